# METADATA
# title: Kubernetes workload controls (Terraform kubernetes provider shapes)
package novacron.compliance.kubernetes

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

pod_types := {"kubernetes_pod", "kubernetes_pod_v1"}

template_types := {
	"kubernetes_deployment", "kubernetes_deployment_v1", "kubernetes_stateful_set",
	"kubernetes_stateful_set_v1", "kubernetes_daemonset", "kubernetes_daemon_set_v1",
	"kubernetes_job", "kubernetes_job_v1", "kubernetes_replication_controller",
}

cron_types := {"kubernetes_cron_job", "kubernetes_cron_job_v1"}

# The pod spec of any workload type (the unknown marker when a level of it is unknown).
pod := lib.block(cfg, "spec") if input.type in pod_types

pod := lib.block(lib.block(lib.block(cfg, "spec"), "template"), "spec") if input.type in template_types

pod := s if {
	input.type in cron_types
	job := lib.block(lib.block(cfg, "spec"), "job_template")
	s := lib.block(lib.block(lib.block(job, "spec"), "template"), "spec")
}

containers := array.concat(lib.list_of(pod, "container"), lib.list_of(pod, "init_container"))

sc(c) := lib.block(c, "security_context")

pod_sc := lib.block(pod, "security_context")

deny contains "k8s-no-privileged" if {
	some c in containers
	lib.is_true(sc(c), "privileged")
}

deny contains "k8s-no-host-pid" if lib.is_true(pod, "host_pid")

deny contains "k8s-no-host-ipc" if lib.is_true(pod, "host_ipc")

deny contains "k8s-no-host-network" if lib.is_true(pod, "host_network")

# allowPrivilegeEscalation defaults to true: only an explicit false passes.
deny contains "k8s-no-privilege-escalation" if {
	some c in containers
	lib.differs(sc(c), "allow_privilege_escalation", false)
}

deny contains "k8s-run-as-non-root" if {
	some c in containers
	not lib.unknown_under(sc(c))
	not lib.unknown_under(pod_sc)
	not non_root(c)
}

non_root(c) if lib.is_true(sc(c), "run_as_non_root")

non_root(c) if {
	lib.is_true(pod_sc, "run_as_non_root")
	not lib.is_false(sc(c), "run_as_non_root")
}

deny contains "k8s-no-added-capabilities" if {
	some c in containers
	some cap in lib.list_of(lib.block(sc(c), "capabilities"), "add")
	is_string(cap)
	upper(cap) != "NET_BIND_SERVICE"
}

deny contains "k8s-drop-net-raw" if {
	some c in containers
	caps := lib.block(sc(c), "capabilities")
	not lib.unknown_under(caps)
	drops := {upper(d) | some d in lib.list_of(caps, "drop"); is_string(d)}
	count(drops & {"ALL", "NET_RAW"}) == 0
}

deny contains "k8s-no-host-path" if {
	some v in lib.list_of(pod, "volume")
	lib.above(count(lib.list_of(v, "host_path")), 0)
}

deny contains "k8s-no-host-port" if {
	some c in containers
	some p in lib.list_of(c, "port")
	lib.above(lib.number(p, "host_port", 0), 0)
}

deny contains "k8s-resource-limits" if {
	some c in lib.list_of(pod, "container")
	limits := lib.get(lib.block(c, "resources"), "limits")
	lib.known(limits)
	some kind in ["cpu", "memory"]
	lib.empty(limits, kind)
}

deny contains "k8s-read-only-root-fs" if {
	some c in lib.list_of(pod, "container")
	lib.not_true(sc(c), "read_only_root_filesystem")
}

deny contains "k8s-image-pinned" if {
	some c in containers
	image := lib.get(c, "image")
	lib.known(image)
	not pinned(image)
}

pinned(image) if {
	is_string(image)
	contains(image, "@sha256:")
}

pinned(image) if {
	is_string(image)
	not contains(image, "@")
	parts := split(image, "/")
	tag := split(parts[count(parts) - 1], ":")
	count(tag) == 2
	tag[1] != "latest"
}

deny contains "k8s-no-default-namespace" if {
	lib.get(lib.block(cfg, "metadata"), "namespace") in {null, "", "default"}
}

deny contains "k8s-seccomp-profile" if {
	not lib.unknown_under(pod_sc)
	not seccomp_ok
}

seccomp_ok if lib.get(lib.block(pod_sc, "seccomp_profile"), "type") in {"RuntimeDefault", "Localhost"}

deny contains "k8s-secrets-not-in-env" if {
	some c in containers
	some e in lib.list_of(c, "env")
	lib.above(count(lib.list_of(lib.block(e, "value_from"), "secret_key_ref")), 0)
}

deny contains "k8s-no-sa-token-automount" if lib.differs(pod, "automount_service_account_token", false)
