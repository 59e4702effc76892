/* A small strict JSON reader for entry.json: objects, arrays, strings (with \u escapes), numbers,
 * true/false/null. Only the fields of struct entry are kept; everything else is validated and skipped. */

#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

struct reader {
	const char *p;
	const char *end;
	char *err;
	size_t errlen;
};

static int fail(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	if (r->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int expect(struct reader *r, char c)
{
	skip_ws(r);
	if (r->p >= r->end || *r->p != c)
		return fail(r, "expected '%c'", c);
	r->p++;
	return 0;
}

static int hex4(struct reader *r, unsigned *out)
{
	unsigned v = 0;

	if (r->end - r->p < 4)
		return fail(r, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *r->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(r, "bad \\u escape");
	}
	*out = v;
	return 0;
}

static size_t utf8_put(char *dst, unsigned cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xC0 | (cp >> 6));
		dst[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xE0 | (cp >> 12));
		dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		dst[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	dst[0] = (char)(0xF0 | (cp >> 18));
	dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	dst[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Reads a string; stores a malloc'ed copy in *out unless out is NULL. NUL bytes are refused. */
static int read_string(struct reader *r, char **out)
{
	char *buf = NULL;
	size_t n = 0;

	if (expect(r, '"') < 0)
		return -1;
	/* The decoded string is never longer than the encoded one. */
	if (out != NULL) {
		const char *q = r->p;
		while (q < r->end && *q != '"')
			q += (*q == '\\' && q + 1 < r->end) ? 2 : 1;
		buf = malloc((size_t)(q - r->p) + 1);
		if (buf == NULL)
			return fail(r, "out of memory");
	}
	for (;;) {
		char c;
		unsigned cp;
		char tmp[4];
		size_t k;

		if (r->p >= r->end) {
			free(buf);
			return fail(r, "unterminated string");
		}
		c = *r->p++;
		if (c == '"')
			break;
		if ((unsigned char)c < 0x20) {
			free(buf);
			return fail(r, "control character in string");
		}
		if (c != '\\') {
			if (buf)
				buf[n++] = c;
			continue;
		}
		if (r->p >= r->end) {
			free(buf);
			return fail(r, "unterminated escape");
		}
		c = *r->p++;
		switch (c) {
		case '"': case '\\': case '/': tmp[0] = c; k = 1; break;
		case 'b': tmp[0] = '\b'; k = 1; break;
		case 'f': tmp[0] = '\f'; k = 1; break;
		case 'n': tmp[0] = '\n'; k = 1; break;
		case 'r': tmp[0] = '\r'; k = 1; break;
		case 't': tmp[0] = '\t'; k = 1; break;
		case 'u':
			if (hex4(r, &cp) < 0) {
				free(buf);
				return -1;
			}
			if (cp >= 0xD800 && cp < 0xDC00) {
				unsigned lo;
				if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u') {
					free(buf);
					return fail(r, "unpaired surrogate");
				}
				r->p += 2;
				if (hex4(r, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
					free(buf);
					return fail(r, "bad surrogate pair");
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp < 0xE000) {
				free(buf);
				return fail(r, "unpaired surrogate");
			}
			if (cp == 0) {
				free(buf);
				return fail(r, "NUL in string");
			}
			k = utf8_put(tmp, cp);
			break;
		default:
			free(buf);
			return fail(r, "bad escape");
		}
		if (buf) {
			memcpy(buf + n, tmp, k);
			n += k;
		}
	}
	if (buf) {
		buf[n] = '\0';
		*out = buf;
	}
	return 0;
}

static int read_number(struct reader *r, long long *out)
{
	char tmp[64];
	size_t n = 0;
	char *endp;
	int integral = 1;

	skip_ws(r);
	while (r->p < r->end && n < sizeof(tmp) - 1 && strchr("+-0123456789.eE", *r->p)) {
		if (strchr(".eE", *r->p))
			integral = 0;
		tmp[n++] = *r->p++;
	}
	tmp[n] = '\0';
	if (n == 0)
		return fail(r, "expected a value");
	if (out == NULL) {
		(void)strtod(tmp, &endp);
	} else {
		if (!integral)
			return fail(r, "expected an integer");
		*out = strtoll(tmp, &endp, 10);
	}
	if (*endp != '\0')
		return fail(r, "bad number");
	return 0;
}

static int skip_value(struct reader *r, int depth);

static int read_bool(struct reader *r, int *out)
{
	skip_ws(r);
	if ((size_t)(r->end - r->p) >= 4 && !strncmp(r->p, "true", 4)) {
		r->p += 4;
		*out = 1;
		return 0;
	}
	if ((size_t)(r->end - r->p) >= 5 && !strncmp(r->p, "false", 5)) {
		r->p += 5;
		*out = 0;
		return 0;
	}
	return fail(r, "expected true or false");
}

static int skip_container(struct reader *r, int depth, char close, int is_object)
{
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return 0;
	}
	for (;;) {
		if (is_object) {
			if (read_string(r, NULL) < 0 || expect(r, ':') < 0)
				return -1;
		}
		if (skip_value(r, depth + 1) < 0)
			return -1;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		return expect(r, close);
	}
}

static int skip_value(struct reader *r, int depth)
{
	if (depth > MAX_DEPTH)
		return fail(r, "nested too deeply");
	skip_ws(r);
	if (r->p >= r->end)
		return fail(r, "unexpected end");
	switch (*r->p) {
	case '"':
		return read_string(r, NULL);
	case '{':
		r->p++;
		return skip_container(r, depth, '}', 1);
	case '[':
		r->p++;
		return skip_container(r, depth, ']', 0);
	case 't':
	case 'f':
	case 'n': {
		static const char *const words[] = { "true", "false", "null" };
		for (size_t i = 0; i < 3; i++) {
			size_t l = strlen(words[i]);
			if ((size_t)(r->end - r->p) >= l && memcmp(r->p, words[i], l) == 0) {
				r->p += l;
				return 0;
			}
		}
		return fail(r, "bad literal");
	}
	default:
		return read_number(r, NULL);
	}
}

/* A JSON array of strings, appended to the NULL-terminated array *arr (length *len). */
static int read_string_array(struct reader *r, char ***arr, size_t *len)
{
	if (expect(r, '[') < 0)
		return -1;
	skip_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return 0;
	}
	for (;;) {
		char *s = NULL;
		char **grown;

		if (read_string(r, &s) < 0)
			return -1;
		grown = realloc(*arr, (*len + 2) * sizeof(*grown));
		if (grown == NULL) {
			free(s);
			return fail(r, "out of memory");
		}
		*arr = grown;
		(*arr)[(*len)++] = s;
		(*arr)[*len] = NULL;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		return expect(r, ']');
	}
}

/* A NULL-terminated, possibly empty array, so that readers need no NULL check. */
static int ensure_array(struct reader *r, char ***arr)
{
	if (*arr == NULL && (*arr = calloc(1, sizeof(**arr))) == NULL)
		return fail(r, "out of memory");
	return 0;
}

int entry_parse(const char *text, size_t len, struct entry *e, char *err, size_t errlen)
{
	struct reader r = { text, text + len, err, errlen };

	memset(e, 0, sizeof(*e));
	e->uid = -1;
	e->gid = -1;
	e->version = 1;
	err[0] = '\0';

	if (expect(&r, '{') < 0)
		goto bad;
	skip_ws(&r);
	if (r.p < r.end && *r.p == '}') {
		r.p++;
	} else {
		for (;;) {
			char *key = NULL;
			int rc;

			if (read_string(&r, &key) < 0 || expect(&r, ':') < 0) {
				free(key);
				goto bad;
			}
			if (strcmp(key, "env") == 0) {
				rc = read_string_array(&r, &e->env, &e->env_len);
			} else if (strcmp(key, "entrypoint") == 0) {
				rc = read_string_array(&r, &e->entrypoint, &e->entrypoint_len);
			} else if (strcmp(key, "runEntrypoint") == 0) {
				rc = read_bool(&r, &e->run_entrypoint);
			} else if (strcmp(key, "remapRoot") == 0) {
				rc = read_bool(&r, &e->remap_root);
			} else if (strcmp(key, "workdir") == 0) {
				free(e->workdir);
				e->workdir = NULL;
				rc = read_string(&r, &e->workdir);
			} else if (strcmp(key, "uid") == 0) {
				rc = read_number(&r, &e->uid);
			} else if (strcmp(key, "gid") == 0) {
				rc = read_number(&r, &e->gid);
			} else if (strcmp(key, "notice") == 0) {
				free(e->notice);
				e->notice = NULL;
				rc = read_string(&r, &e->notice);
			} else if (strcmp(key, "v") == 0) {
				rc = read_number(&r, &e->version);
			} else if (strcmp(key, "devicePaths") == 0) {
				rc = read_string_array(&r, &e->device_paths, &e->device_paths_len);
			} else if (strcmp(key, "pytorchEnv") == 0) {
				rc = read_bool(&r, &e->pytorch_env);
			} else {
				rc = skip_value(&r, 1);
			}
			free(key);
			if (rc < 0)
				goto bad;
			skip_ws(&r);
			if (r.p < r.end && *r.p == ',') {
				r.p++;
				continue;
			}
			if (expect(&r, '}') < 0)
				goto bad;
			break;
		}
	}
	skip_ws(&r);
	if (r.p != r.end) {
		fail(&r, "trailing data");
		goto bad;
	}
	if (ensure_array(&r, &e->env) < 0 || ensure_array(&r, &e->entrypoint) < 0 || ensure_array(&r, &e->device_paths) < 0)
		goto bad;
	if (e->version != STRATA_ENTRY_VERSION) {
		fail(&r, "entry format %lld, this plugin reads %d", e->version, STRATA_ENTRY_VERSION);
		entry_free(e);
		return ENTRY_E_VERSION;
	}
	return 0;
bad:
	entry_free(e);
	return -1;
}

static void free_array(char **arr, size_t len)
{
	if (arr) {
		for (size_t i = 0; i < len; i++)
			free(arr[i]);
		free(arr);
	}
}

void entry_free(struct entry *e)
{
	free_array(e->env, e->env_len);
	free_array(e->entrypoint, e->entrypoint_len);
	free_array(e->device_paths, e->device_paths_len);
	free(e->workdir);
	free(e->notice);
	memset(e, 0, sizeof(*e));
	e->uid = -1;
	e->gid = -1;
}
