// strata-agent-gate: the node agent's socket (src/runtime/agent). Node cannot read a Unix socket
// peer's credentials (SO_PEERCRED), so this small child of the agent owns the listening socket,
// accepts only connections from uid 0, reads each request to its end (the client shuts its side
// down) and hands it to the agent over stdout as one frame "<connection> <length>\n<bytes>". The
// agent's frames on stdin carry the bytes to send back, and length 0 closes the connection;
// connection 0 is this program: an empty frame to it closes the listening socket (the agent is
// draining before an upgrade). When the agent goes (stdin EOF) this program exits and every open
// connection sees EOF: the front-ends then run the prolog/epilog themselves.
//
// Usage: strata-agent-gate SOCKET_PATH   (its directory: root's, mode 0700, made by the agent)
// Prints "ready\n" once listening.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONNECTIONS 256
#define MAX_REQUEST (1 << 20)

struct connection {
  int fd;
  unsigned id;
  char *in;
  size_t in_length;
  int request_done;
  char *out;
  size_t out_length, out_sent;
  int closing;
};

static struct connection connections[MAX_CONNECTIONS];
static unsigned next_id = 1;

static void write_all(int fd, const char *bytes, size_t length) {
  while (length) {
    ssize_t wrote = write(fd, bytes, length);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) exit(0);  // the agent is gone
    bytes += wrote;
    length -= (size_t)wrote;
  }
}

static void drop(struct connection *c) {
  close(c->fd);
  free(c->in);
  free(c->out);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

static struct connection *find(unsigned id) {
  for (int i = 0; i < MAX_CONNECTIONS; i++)
    if (connections[i].fd >= 0 && connections[i].id == id) return &connections[i];
  return NULL;
}

// Queue bytes for a client (writes happen when its socket is writable).
static void queue(struct connection *c, const char *bytes, size_t length) {
  char *bigger = realloc(c->out, c->out_length + length + 1);
  if (!bigger) {
    drop(c);
    return;
  }
  c->out = bigger;
  memcpy(c->out + c->out_length, bytes, length);
  c->out_length += length;
}

static void refuse(int fd, const char *why) {
  char line[128];
  int length = snprintf(line, sizeof line, "refused %s\n", why);
  if (write(fd, line, (size_t)length) < 0) {
    // the client left: nothing to tell
  }
  close(fd);
}

static void accept_one(int listener) {
  int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  struct ucred peer;
  socklen_t size = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || peer.uid != 0) return refuse(fd, "not-root");
  for (int i = 0; i < MAX_CONNECTIONS; i++) {
    if (connections[i].fd < 0) {
      connections[i].fd = fd;
      connections[i].id = next_id++;
      if (next_id > 999999999) next_id = 1;
      return;
    }
  }
  refuse(fd, "busy");
}

static void read_request(struct connection *c) {
  char chunk[65536];
  ssize_t got = read(c->fd, chunk, sizeof chunk);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got < 0) return drop(c);
  if (got == 0) {
    // Header and request in one write: the agent wakes once per request.
    char header[40];
    int length = snprintf(header, sizeof header, "%u %zu\n", c->id, c->in_length);
    char *frame = malloc((size_t)length + c->in_length);
    if (!frame) exit(0);
    memcpy(frame, header, (size_t)length);
    if (c->in_length) memcpy(frame + length, c->in, c->in_length);
    write_all(STDOUT_FILENO, frame, (size_t)length + c->in_length);
    free(frame);
    c->request_done = 1;
    return;
  }
  if (c->in_length + (size_t)got > MAX_REQUEST) {
    refuse(c->fd, "too-large");
    c->fd = -1;
    return drop(c);
  }
  char *bigger = realloc(c->in, c->in_length + (size_t)got);
  if (!bigger) return drop(c);
  c->in = bigger;
  memcpy(c->in + c->in_length, chunk, (size_t)got);
  c->in_length += (size_t)got;
}

static void send_out(struct connection *c) {
  while (c->out_sent < c->out_length) {
    ssize_t wrote = write(c->fd, c->out + c->out_sent, c->out_length - c->out_sent);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0 && errno == EAGAIN) return;
    if (wrote <= 0) return drop(c);
    c->out_sent += (size_t)wrote;
  }
  if (c->closing) drop(c);
}

// Frames from the agent: parse as many as are complete in `buffer`.
static size_t take_frames(char *buffer, size_t length, int *listener, const char *socket_path) {
  size_t used = 0;
  for (;;) {
    char *newline = memchr(buffer + used, '\n', length - used);
    if (!newline) {
      if (length - used > 32) exit(2);
      return used;
    }
    unsigned id;
    size_t size;
    *newline = '\0';
    if (sscanf(buffer + used, "%u %zu", &id, &size) != 2) exit(2);
    size_t start = (size_t)(newline - buffer) + 1;
    if (length - start < size) {
      *newline = '\n';
      return used;
    }
    if (id == 0) {
      if (*listener >= 0) {
        close(*listener);
        *listener = -1;
        unlink(socket_path);
      }
    } else {
      struct connection *c = find(id);
      if (c && size) queue(c, buffer + start, size);
      else if (c) c->closing = 1;
      if (c && c->fd >= 0) send_out(c);
    }
    used = start + size;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: strata-agent-gate SOCKET_PATH\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < MAX_CONNECTIONS; i++) connections[i].fd = -1;
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  if (strlen(argv[1]) >= sizeof address.sun_path) {
    fprintf(stderr, "strata-agent-gate: socket path too long: %s\n", argv[1]);
    return 1;
  }
  strcpy(address.sun_path, argv[1]);
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  umask(077);
  unlink(argv[1]);
  if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 128) != 0) {
    fprintf(stderr, "strata-agent-gate: cannot listen on %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  write_all(STDOUT_FILENO, "ready\n", 6);

  size_t capacity = 1 << 16, length = 0;
  char *input = malloc(capacity);
  struct pollfd fds[MAX_CONNECTIONS + 2];
  for (;;) {
    int n = 0;
    fds[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
    fds[n++] = (struct pollfd){ .fd = listener, .events = POLLIN };
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
      struct connection *c = &connections[i];
      short events = (c->request_done ? 0 : POLLIN) | (c->out_sent < c->out_length ? POLLOUT : 0);
      fds[n++] = (struct pollfd){ .fd = c->fd, .events = events };
    }
    if (poll(fds, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[0].revents) {
      if (length == capacity && !(input = realloc(input, capacity *= 2))) return 1;
      ssize_t got = read(STDIN_FILENO, input + length, capacity - length);
      if (got <= 0 && !(got < 0 && errno == EINTR)) return 0;  // the agent is gone
      if (got > 0) length += (size_t)got;
      size_t used = take_frames(input, length, &listener, argv[1]);
      memmove(input, input + used, length - used);
      length -= used;
    }
    if (listener >= 0 && fds[1].revents & POLLIN) accept_one(listener);
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
      struct connection *c = &connections[i];
      short revents = fds[i + 2].revents;
      if (c->fd < 0 || fds[i + 2].fd != c->fd || !revents) continue;
      if (revents & POLLOUT) send_out(c);
      if (c->fd >= 0 && !c->request_done && revents & (POLLIN | POLLHUP)) read_request(c);
      // A client that went away after its request: the agent's reply is dropped on arrival.
      else if (c->fd >= 0 && c->request_done && revents & (POLLERR | POLLHUP)) drop(c);
    }
  }
}
