/*
 * The PyTorch distributed variables of enroot's optional Slurm hook (50-slurm-pytorch.sh), where
 * the site enables them (container.pytorch_env; the prolog then puts "pytorchEnv": true in
 * entry.json), so that torch.distributed starts without torchrun. RANK and LOCAL_RANK differ per
 * task, so they are set here, in each task (slurmstepd, after the image's environment):
 *   MASTER_ADDR  the first node of the step (of the job, for the batch script)
 *   MASTER_PORT  61000 + job id mod 4536 (enroot's choice: the same on every node, per job)
 *   WORLD_SIZE   the step's task count     RANK  the task's global rank   LOCAL_RANK  its rank on the node
 *   OMP_NUM_THREADS=1 when the step runs more tasks than nodes (as torch.distributed.run does)
 * As with enroot, a variable the image sets is left alone, and so is one the user keeps with
 * STRATA_CONTAINER_ENV (--container-env); a value inherited from the batch script is replaced, or
 * every rank of a step would get the batch script's RANK=0.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <slurm/spank.h>

#include "strata.h"

int first_host(const char *list, char *out, size_t len)
{
	size_t o = 0;

	for (const char *p = list; *p && *p != ',';) {
		if (*p == '[') {
			size_t digits = strspn(p + 1, "0123456789");
			const char *close = strchr(p, ']');
			if (digits == 0 || close == NULL || o + digits >= len)
				return -1;
			memcpy(out + o, p + 1, digits);
			o += digits;
			p = close + 1;
		} else {
			if (o + 1 >= len)
				return -1;
			out[o++] = *p++;
		}
	}
	if (len == 0)
		return -1;
	out[o] = '\0';
	return o ? 0 : -1;
}

/* The image sets `name`, or the user keeps the job's value of it (and the job has one). */
static int left_alone(spank_t sp, const struct entry *entry, const char *keep, const char *name)
{
	size_t len = strlen(name);
	char value[16];

	for (size_t i = 0; i < entry->env_len; i++)
		if (!strncmp(entry->env[i], name, len) && entry->env[i][len] == '=')
			return 1;
	for (const char *p = keep; *p;) {
		size_t n = strcspn(p, ",");
		if (n == len && !strncmp(p, name, len))
			return spank_getenv(sp, name, value, sizeof(value)) != ESPANK_ENV_NOEXIST;
		p += n + (p[n] == ',');
	}
	return 0;
}

static void set(spank_t sp, const struct entry *entry, const char *keep, const char *name, const char *value)
{
	if (!left_alone(sp, entry, keep, name) && spank_setenv(sp, name, value, 1) != ESPANK_SUCCESS)
		slurm_error(TAG ": could not set %s in the task environment", name);
}

static void set_number(spank_t sp, const struct entry *entry, const char *keep, const char *name, unsigned long value)
{
	char text[24];

	snprintf(text, sizeof(text), "%lu", value);
	set(sp, entry, keep, name, text);
}

void pytorch_env_apply(spank_t sp, const struct entry *entry, const char *keep)
{
	static const char *const node_lists[] = { "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST" };
	char list[8192], host[256];
	uint32_t jobid = 0, tasks = 0, nodes = 0, global = 0;
	int local = 0;

	if (!entry->pytorch_env)
		return;
	for (size_t i = 0; i < sizeof(node_lists) / sizeof(node_lists[0]); i++) {
		if (job_env(sp, node_lists[i], list, sizeof(list))) {
			if (first_host(list, host, sizeof(host)) == 0)
				set(sp, entry, keep, "MASTER_ADDR", host);
			break;
		}
	}
	if (spank_get_item(sp, S_JOB_ID, &jobid) == ESPANK_SUCCESS)
		set_number(sp, entry, keep, "MASTER_PORT", 61000 + jobid % 4536);
	if (spank_get_item(sp, S_JOB_TOTAL_TASK_COUNT, &tasks) == ESPANK_SUCCESS)
		set_number(sp, entry, keep, "WORLD_SIZE", tasks);
	if (spank_get_item(sp, S_TASK_GLOBAL_ID, &global) == ESPANK_SUCCESS)
		set_number(sp, entry, keep, "RANK", global);
	if (spank_get_item(sp, S_TASK_ID, &local) == ESPANK_SUCCESS && local >= 0)
		set_number(sp, entry, keep, "LOCAL_RANK", (unsigned long)local);
	if (spank_get_item(sp, S_JOB_NNODES, &nodes) == ESPANK_SUCCESS && tasks > nodes)
		set(sp, entry, keep, "OMP_NUM_THREADS", "1");
}
