/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubelet — Kubernetes pod metadata for service-name rule 3 of DESIGN.md §3:
 * the node's kubelet answers GET /pods with a PodList (the pods bound to
 * this node, with their labels and their containers' runtime ids); a
 * process is matched to its pod by the container id (or pod uid) that
 * procinfo reads from /proc/PID/cgroup.
 *
 * Owns: the parsed pod list (kube_pods: pods, their containers' 64-hex ids)
 * and a client whose own thread fetches it every refresh period with
 * libcurl — bounded in size (--kubelet-max-mb), with connect and transfer
 * timeouts, the service-account token re-read each time (it rotates). The
 * window loop never waits for the kubelet: kubelet_lookup() reads the last
 * good list under a mutex. A kubelet that is unreachable or answers
 * garbage (not JSON, not a PodList, too large) is counted
 * (kubelet_stats), logged once per change between working and failing,
 * and leaves the last good list (none at start): processes simply get no
 * pod labels, and sampling goes on.
 *
 * What a matched process gets (kubelet_lookup): the labels namespace, pod,
 * container (the container's name) and the pod's own labels as
 * pod_label_<name> (name with every byte outside [A-Za-z0-9_] made '_'; at
 * most KUBE_MAX_POD_LABELS; the per-revision hashes left out), and the
 * service name "<namespace>/<app>" where app is the label
 * app.kubernetes.io/name, else app — or no name when the pod has neither.
 */
#ifndef STOKE_KUBELET_H
#define STOKE_KUBELET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/labels.h"

#define KUBE_MAX_PODS       4096 /* pods in one list (a node runs 110 by default) */
#define KUBE_MAX_CONTAINERS 64   /* per pod, init and ephemeral ones included */
#define KUBE_MAX_POD_LABELS 16   /* kept per pod */
#define KUBE_MAX_VALUE      253 /* bytes of a name or label value (Kubernetes: 63; 253 for names) */

struct kube_pod {
    char *uid, *name, *ns;
    char *app; /* app.kubernetes.io/name, else app; NULL when neither */
    char *label_names[KUBE_MAX_POD_LABELS], *label_values[KUBE_MAX_POD_LABELS];
    size_t nlabels;
};

struct kube_container {
    char id[65];  /* the runtime's id, 64 hex digits, without "containerd://" */
    char *name;   /* the container's name in the pod spec */
    uint32_t pod; /* index into kube_pods.pods */
};

struct kube_pods {
    struct kube_pod *pods;
    size_t npods;
    struct kube_container *ctrs;
    size_t nctrs;
};

/*
 * Parses a kubelet /pods answer (a v1 PodList). Pods without metadata.uid,
 * name or namespace are skipped, as are containers whose id is not
 * "<runtime>://<64 hex>" (not started yet). 0 with *out (kube_pods_free),
 * -EINVAL with what is wrong in @err (not JSON, not a PodList, more than
 * KUBE_MAX_PODS pods), or -ENOMEM.
 */
int kube_pods_parse(const char *buf, size_t len, struct kube_pods **out, char *err, size_t errlen);
void kube_pods_free(struct kube_pods *p);
/* The pod of container @cid (64 hex digits) or, failing that, of pod uid
 * @pod_uid; either may be NULL. *ctr_name is the container's name when
 * found by @cid, else NULL. */
const struct kube_pod *kube_pods_find(const struct kube_pods *p, const char *cid,
                                      const char *pod_uid, const char **ctr_name);
/* Puts @pod's labels (namespace, pod, container when @ctr_name,
 * pod_label_*) into @ls and sets *service to a malloc'd "<ns>/<app>", or
 * NULL when the pod has no app label. 0 or -ENOMEM. */
int kube_pod_labels(const struct kube_pod *pod, const char *ctr_name, struct label_set *ls,
                    char **service);

/* ---- the client ---------------------------------------------------------- */

struct kubelet_opts {
    const char *url;        /* base URL, e.g. https://10.0.0.5:10250; "/pods" is appended */
    const char *token_file; /* bearer token (re-read per fetch); NULL = none */
    const char *ca_file;    /* CA bundle for the kubelet's certificate; NULL = the system's */
    bool insecure;          /* do not verify the kubelet's certificate */
    unsigned refresh_s;     /* 0 = 15 */
    unsigned timeout_s;     /* whole request; 0 = 10 */
    size_t max_bytes;       /* largest answer; 0 = 16 MiB */
};

struct kubelet_stats {
    uint64_t fetches;          /* requests made */
    uint64_t fetch_errors;     /* unreachable, timed out, TLS, HTTP status not 200, too large */
    uint64_t parse_errors;     /* answered, but not a PodList */
    uint64_t pods, containers; /* in the list in use */
    uint64_t generation;       /* lists taken so far */
    bool ok;                   /* the last fetch gave a list */
};

struct kubelet;

/* Validates and copies @o; NULL with -EINVAL (no URL, not http(s)) or
 * -ENOMEM in *err. No request is made yet. */
struct kubelet *kubelet_new(const struct kubelet_opts *o, int *err);
/* Starts the fetch thread: the first fetch at once. 0 or -errno. */
int kubelet_start(struct kubelet *k);
/* Stops the thread (a fetch in flight is abandoned within a second) and
 * frees. NULL is fine. */
void kubelet_free(struct kubelet *k);
/* One fetch now, in the caller's thread (tests; what the thread does each
 * period). 0, or a negative errno (-EIO: fetch failed, -EINVAL: garbage). */
int kubelet_fetch(struct kubelet *k);
/* Counts a new list; tests give one without HTTP. Takes @p. */
void kubelet_set_pods(struct kubelet *k, struct kube_pods *p);
/* How many lists were taken: a process not found in one list may be in
 * the next. */
uint64_t kubelet_generation(struct kubelet *k);
/* kube_pods_find + kube_pod_labels on the list in use: 1 found (labels put,
 * *service set or NULL), 0 not found (or no list yet), -ENOMEM. */
int kubelet_lookup(struct kubelet *k, const char *cid, const char *pod_uid, struct label_set *ls,
                   char **service);
void kubelet_get_stats(struct kubelet *k, struct kubelet_stats *out);

#endif
