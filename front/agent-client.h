// The front-end's side of the node agent (src/runtime/agent/frames.ts has the format): send the
// job's environment, print the prolog's/epilog's messages and return its exit status. Any failure
// (no agent, not root's, refused, closed mid-request, malformed, silent for AGENT_SILENCE_MS)
// returns -1 and nothing has been printed: the caller then runs the Node entry point itself,
// which copes with whatever a dead agent left (a half-done prolog is undone first).
// Included once by strata-front.c, after read_config().

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

// The agent sends "\n" every second while it works: this long without a byte means it hangs.
#define AGENT_SILENCE_MS 10000
#define AGENT_MAX_REPLY (16 << 20)

static int wait_for(int fd, short events, int timeout_ms) {
  struct pollfd poller = { .fd = fd, .events = events };
  for (;;) {
    int ready = poll(&poller, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    return ready > 0;
  }
}

static int send_all(int fd, const char *bytes, size_t length) {
  while (length) {
    ssize_t sent = send(fd, bytes, length, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && errno == EAGAIN && wait_for(fd, POLLOUT, 2000)) continue;
    if (sent <= 0) return 0;
    bytes += sent;
    length -= (size_t)sent;
  }
  return 1;
}

static int write_out(int fd, const char *bytes, size_t length) {
  while (length) {
    ssize_t wrote = write(fd, bytes, length);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return 0;
    bytes += wrote;
    length -= (size_t)wrote;
  }
  return 1;
}

// The request: "strata-agent/1 PHASE\n" and environ as KEY=VALUE\0 entries.
static char *agent_request(const char *phase, size_t *length) {
  size_t size = strlen("strata-agent/1 \n") + strlen(phase);
  for (char **entry = environ; *entry; entry++) size += strlen(*entry) + 1;
  char *request = malloc(size + 1);
  if (!request) return NULL;
  size_t at = (size_t)sprintf(request, "strata-agent/1 %s\n", phase);
  for (char **entry = environ; *entry; entry++) {
    size_t entry_length = strlen(*entry) + 1;
    memcpy(request + at, *entry, entry_length);
    at += entry_length;
  }
  *length = at;
  return request;
}

// The exit status from a complete reply, its messages printed; -1 when it is not one.
static int agent_reply(const char *reply, size_t length) {
  size_t start = 0;
  while (start < length && reply[start] == '\n') start++;
  const char *newline = memchr(reply + start, '\n', length - start);
  if (!newline) return -1;
  int status;
  size_t out_length, err_length;
  char tail;
  char header[64];
  size_t header_length = (size_t)(newline - reply) - start;
  if (header_length >= sizeof header) return -1;
  memcpy(header, reply + start, header_length);
  header[header_length] = '\0';
  if (sscanf(header, "status %d %zu %zu%c", &status, &out_length, &err_length, &tail) != 3 || status < 0 || status > 255) return -1;
  const char *body = newline + 1;
  size_t body_length = length - (size_t)(body - reply);
  if (out_length > body_length || err_length != body_length - out_length) return -1;
  // Printed as the Node entry point prints them; a closed stdout/stderr is not the job's problem.
  write_out(STDOUT_FILENO, body, out_length);
  write_out(STDERR_FILENO, body + out_length, err_length);
  return status;
}

static int ask_agent(const char *phase) {
  struct config config;
  const char *choice = getenv("STRATA_AGENT");
  if ((choice && strcmp(choice, "off") == 0) || !read_config(&config)) return -1;
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  int n = snprintf(address.sun_path, sizeof address.sun_path, "%s/agent/sock", config.runtime_dir);
  if (n < 0 || (size_t)n >= sizeof address.sun_path) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  // Unix sockets connect at once or fail at once (no agent: ENOENT, ECONNREFUSED; full: EAGAIN).
  struct ucred peer;
  socklen_t size = sizeof peer;
  if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || peer.uid != 0) {
    close(fd);
    return -1;
  }
  size_t request_length;
  char *request = agent_request(phase, &request_length);
  int sent = request && send_all(fd, request, request_length) && shutdown(fd, SHUT_WR) == 0;
  free(request);
  size_t length = 0, capacity = 4096;
  char *reply = sent ? malloc(capacity) : NULL;
  int status = -1;
  while (reply) {
    if (!wait_for(fd, POLLIN, AGENT_SILENCE_MS)) {
      // Hung: end it (its gate; the agent exits with it), so that it never works on this job
      // again behind the Node entry point's back.
      if (peer.pid > 1) kill(peer.pid, SIGKILL);
      break;
    }
    if (length == capacity) {
      char *bigger = capacity < AGENT_MAX_REPLY ? realloc(reply, capacity *= 2) : NULL;
      if (!bigger) break;
      reply = bigger;
    }
    ssize_t got = recv(fd, reply + length, capacity - length, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) break;
    if (got == 0) {
      status = agent_reply(reply, length);
      break;
    }
    length += (size_t)got;
  }
  free(reply);
  close(fd);
  return status;
}
