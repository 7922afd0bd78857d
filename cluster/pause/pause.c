/*
 * pause: the process that holds a pod's namespaces open (containerd's sandbox_image runs it).
 *
 * It does what Kubernetes' own pause does and nothing more: sleep in pause() forever, reap any
 * child that gets reparented to it (it is pid 1 of the pod when the pid namespace is shared),
 * and exit 0 on SIGTERM or SIGINT so that stopping a sandbox is quick and clean.
 * Built static (gcc -static) so the image needs no libc: `python -m cluster.images build`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "3.10-mapquake"

static void sigdown(int signo) {
    (void)signo;
    /* _exit is async-signal-safe; exit() is not. */
    _exit(0);
}

static void sigreap(int signo) {
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static void on(int signo, void (*handler)(int), int flags) {
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = flags;
    sigemptyset(&act.sa_mask);
    if (sigaction(signo, &act, NULL) < 0) {
        perror("pause: sigaction");
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        printf("pause %s\n", VERSION);
        return 0;
    }
    if (getpid() != 1) {
        /* Not an error: tests run it as an ordinary process. */
        fprintf(stderr, "pause: not pid 1; children reparented elsewhere are not reaped here\n");
    }
    on(SIGINT, sigdown, 0);
    on(SIGTERM, sigdown, 0);
    on(SIGCHLD, sigreap, SA_NOCLDSTOP | SA_RESTART);
    for (;;) {
        pause();
    }
    return 42; /* unreachable */
}
