package novacron.compliance.kubernetes_test

# Unit tests of the Kubernetes workload controls, one pass and one fail example per condition
# (`novacron policy test policies/compliance/rego`). Inputs are set with input.type/config
# overrides: the in-process engine evaluates those (a whole `with input as` it does not).
# object.union replaces only top-level keys whose values are lists or scalars: the in-process
# engine merges nested objects shallowly, OPA deeply.
import data.novacron.compliance.kubernetes
import rego.v1

marker := {"__unknown__": "known after apply"}

# The verdicts for one input. Every assertion goes through these functions, so the file has one
# `with` site per input shape: the in-process engine compiles a copy of the package under test
# for each `with` site (a few hundred MB each for the larger packages), and writing `with` in
# every assertion would need gigabytes.
deny_of(t, c) := d if {
	d := kubernetes.deny with input.type as t with input.config as c
}

good_sc := {
	"privileged": false, "allow_privilege_escalation": false, "run_as_non_root": true,
	"read_only_root_filesystem": true, "capabilities": [{"drop": ["ALL"]}],
}

good_ctr := {
	"name": "app", "image": "registry.example.com/app:1.4.2", "security_context": [good_sc],
	"resources": [{"limits": {"cpu": "500m", "memory": "256Mi"}}],
}

good_pod := {
	"automount_service_account_token": false,
	"security_context": [{"seccomp_profile": [{"type": "RuntimeDefault"}]}],
	"container": [good_ctr],
}

meta := [{"name": "app", "namespace": "payments"}]

# A container with its security context changed.
with_sc(changes) := object.union(good_ctr, {"security_context": [object.union(good_sc, changes)]})

# A container with top-level keys changed.
ctr(changes) := object.union(good_ctr, changes)

# Configs of the three workload shapes around the good pod spec with top-level keys changed.
pod(changes) := {"metadata": meta, "spec": [object.union(good_pod, changes)]}

deployment(changes) := {"metadata": meta, "spec": [{"replicas": 2, "template": [{"spec": [object.union(good_pod, changes)]}]}]}

cron(changes) := {"metadata": meta, "spec": [{"schedule": "0 * * * *", "job_template": [{"spec": [{"template": [{"spec": [object.union(good_pod, changes)]}]}]}]}]}

template_types := [
	"kubernetes_deployment", "kubernetes_deployment_v1", "kubernetes_stateful_set",
	"kubernetes_stateful_set_v1", "kubernetes_daemonset", "kubernetes_daemon_set_v1",
	"kubernetes_job", "kubernetes_job_v1", "kubernetes_replication_controller",
]

# --- workload shapes -----------------------------------------------------------------------------

test_a_well_configured_workload_of_every_shape_passes if {
	every t in ["kubernetes_pod", "kubernetes_pod_v1"] {
		count(deny_of(t, pod({}))) == 0
	}
	every t in template_types {
		count(deny_of(t, deployment({}))) == 0
	}
	every t in ["kubernetes_cron_job", "kubernetes_cron_job_v1"] {
		count(deny_of(t, cron({}))) == 0
	}
}

test_the_pod_spec_is_found_in_every_shape if {
	every t in ["kubernetes_pod", "kubernetes_pod_v1"] {
		"k8s-no-host-pid" in deny_of(t, pod({"host_pid": true}))
	}
	every t in template_types {
		"k8s-no-host-pid" in deny_of(t, deployment({"host_pid": true}))
	}
	every t in ["kubernetes_cron_job", "kubernetes_cron_job_v1"] {
		"k8s-no-host-pid" in deny_of(t, cron({"host_pid": true}))
	}
	not "k8s-no-host-pid" in deny_of("kubernetes_pod", deployment({"host_pid": true}))
	not "k8s-no-host-pid" in deny_of("kubernetes_service", pod({"host_pid": true}))
}

test_an_unknown_pod_spec_decides_nothing if {
	count(deny_of("kubernetes_deployment", {"metadata": meta, "spec": [{"template": marker}]})) == 0
	count(deny_of("kubernetes_pod", {"metadata": meta, "spec": marker})) == 0
	count(deny_of("kubernetes_cron_job", {"metadata": meta, "spec": [{"job_template": [{"spec": marker}]}]})) == 0
}

# --- pod-level flags -----------------------------------------------------------------------------

test_host_namespaces if {
	every flag in ["host_pid", "host_ipc", "host_network"] {
		id := concat("-", ["k8s-no", replace(flag, "_", "-")])
		id in deny_of("kubernetes_deployment", deployment({flag: true}))
		not id in deny_of("kubernetes_deployment", deployment({flag: false}))
		not id in deny_of("kubernetes_deployment", deployment({}))
		not id in deny_of("kubernetes_deployment", deployment({flag: marker}))
	}
}

test_service_account_token_automount if {
	"k8s-no-sa-token-automount" in deny_of("kubernetes_pod", pod({"automount_service_account_token": true}))
	"k8s-no-sa-token-automount" in deny_of("kubernetes_pod", {"metadata": meta, "spec": [object.remove(good_pod, ["automount_service_account_token"])]})
	not "k8s-no-sa-token-automount" in deny_of("kubernetes_pod", pod({"automount_service_account_token": marker}))
}

test_seccomp_profile if {
	not "k8s-seccomp-profile" in deny_of("kubernetes_pod", pod({"security_context": [{"seccomp_profile": [{"type": "Localhost", "localhost_profile": "p.json"}]}]}))
	"k8s-seccomp-profile" in deny_of("kubernetes_pod", pod({"security_context": [{"seccomp_profile": [{"type": "Unconfined"}]}]}))
	"k8s-seccomp-profile" in deny_of("kubernetes_pod", pod({"security_context": [{"run_as_non_root": true}]}))
	"k8s-seccomp-profile" in deny_of("kubernetes_pod", pod({"security_context": []}))
	not "k8s-seccomp-profile" in deny_of("kubernetes_pod", pod({"security_context": marker}))
	not "k8s-seccomp-profile" in deny_of("kubernetes_pod", pod({"security_context": [{"seccomp_profile": [{"type": marker}]}]}))
}

test_no_host_path_volumes if {
	"k8s-no-host-path" in deny_of("kubernetes_pod", pod({"volume": [{"name": "tmp", "empty_dir": [{}]}, {"name": "root", "host_path": [{"path": "/"}]}]}))
	"k8s-no-host-path" in deny_of("kubernetes_pod", pod({"volume": [{"name": "root", "host_path": [{"path": "/"}]}, {"name": "tmp", "empty_dir": [{}]}]}))
	not "k8s-no-host-path" in deny_of("kubernetes_pod", pod({"volume": [{"name": "tmp", "empty_dir": [{}]}, {"name": "cfg", "config_map": [{"name": "c"}]}]}))
	not "k8s-no-host-path" in deny_of("kubernetes_pod", pod({"volume": [{"name": "v", "host_path": []}]}))
}

test_no_default_namespace if {
	"k8s-no-default-namespace" in deny_of("kubernetes_pod", object.union(pod({}), {"metadata": [{"name": "app", "namespace": "default"}]}))
	"k8s-no-default-namespace" in deny_of("kubernetes_pod", object.union(pod({}), {"metadata": [{"name": "app", "namespace": ""}]}))
	"k8s-no-default-namespace" in deny_of("kubernetes_pod", object.union(pod({}), {"metadata": [{"name": "app"}]}))
	"k8s-no-default-namespace" in deny_of("kubernetes_pod", object.remove(pod({}), ["metadata"]))
	not "k8s-no-default-namespace" in deny_of("kubernetes_pod", object.union(pod({}), {"metadata": [{"name": "app", "namespace": marker}]}))
	not "k8s-no-default-namespace" in deny_of("kubernetes_pod", object.union(pod({}), {"metadata": marker}))
}

# --- container security contexts (containers and init containers, every position) ---------------

test_privileged_containers if {
	"k8s-no-privileged" in deny_of("kubernetes_pod", pod({"container": [with_sc({"privileged": true})]}))
	"k8s-no-privileged" in deny_of("kubernetes_pod", pod({"container": [good_ctr, with_sc({"privileged": true})]}))
	"k8s-no-privileged" in deny_of("kubernetes_pod", pod({"init_container": [with_sc({"privileged": true})]}))
	not "k8s-no-privileged" in deny_of("kubernetes_pod", pod({"container": [with_sc({"privileged": marker}), ctr({"security_context": []})]}))
}

test_privilege_escalation_must_be_switched_off if {
	"k8s-no-privilege-escalation" in deny_of("kubernetes_pod", pod({"container": [with_sc({"allow_privilege_escalation": true})]}))
	"k8s-no-privilege-escalation" in deny_of("kubernetes_pod", pod({"container": [good_ctr, ctr({"security_context": [object.remove(good_sc, ["allow_privilege_escalation"])]})]}))
	"k8s-no-privilege-escalation" in deny_of("kubernetes_pod", pod({"init_container": [ctr({"security_context": []})]}))
	not "k8s-no-privilege-escalation" in deny_of("kubernetes_pod", pod({"container": [with_sc({"allow_privilege_escalation": marker})]}))
	not "k8s-no-privilege-escalation" in deny_of("kubernetes_pod", pod({"container": [ctr({"security_context": marker})]}))
}

test_run_as_non_root_from_the_container_or_the_pod if {
	no_flag := ctr({"security_context": [object.remove(good_sc, ["run_as_non_root"])]})
	"k8s-run-as-non-root" in deny_of("kubernetes_pod", pod({"container": [good_ctr, no_flag]}))
	"k8s-run-as-non-root" in deny_of("kubernetes_pod", pod({"init_container": [with_sc({"run_as_non_root": false})]}))
	not "k8s-run-as-non-root" in deny_of("kubernetes_pod", pod({"container": [no_flag], "security_context": [{"run_as_non_root": true, "seccomp_profile": [{"type": "RuntimeDefault"}]}]}))
	"k8s-run-as-non-root" in deny_of("kubernetes_pod", pod({"container": [with_sc({"run_as_non_root": false})], "security_context": [{"run_as_non_root": true, "seccomp_profile": [{"type": "RuntimeDefault"}]}]}))
	not "k8s-run-as-non-root" in deny_of("kubernetes_pod", pod({"container": [with_sc({"run_as_non_root": marker})]}))
	not "k8s-run-as-non-root" in deny_of("kubernetes_pod", pod({"container": [no_flag], "security_context": [{"run_as_non_root": marker}]}))
}

test_added_capabilities if {
	not "k8s-no-added-capabilities" in deny_of("kubernetes_pod", pod({"container": [with_sc({"capabilities": [{"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "net_bind_service"]}]})]}))
	"k8s-no-added-capabilities" in deny_of("kubernetes_pod", pod({"container": [with_sc({"capabilities": [{"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}]})]}))
	"k8s-no-added-capabilities" in deny_of("kubernetes_pod", pod({"container": [good_ctr], "init_container": [with_sc({"capabilities": [{"drop": ["ALL"], "add": ["NET_ADMIN"]}]})]}))
	not "k8s-no-added-capabilities" in deny_of("kubernetes_pod", pod({"container": [with_sc({"capabilities": [{"drop": ["ALL"], "add": [marker]}]})]}))
}

test_net_raw_is_dropped if {
	not "k8s-drop-net-raw" in deny_of("kubernetes_pod", pod({"container": [with_sc({"capabilities": [{"drop": ["CHOWN", "net_raw"]}]})]}))
	"k8s-drop-net-raw" in deny_of("kubernetes_pod", pod({"container": [with_sc({"capabilities": [{"drop": ["CHOWN"]}]})]}))
	"k8s-drop-net-raw" in deny_of("kubernetes_pod", pod({"container": [good_ctr, with_sc({"capabilities": []})]}))
	"k8s-drop-net-raw" in deny_of("kubernetes_pod", pod({"init_container": [ctr({"security_context": []})]}))
	not "k8s-drop-net-raw" in deny_of("kubernetes_pod", pod({"container": [with_sc({"capabilities": marker})]}))
	not "k8s-drop-net-raw" in deny_of("kubernetes_pod", pod({"container": [ctr({"security_context": marker})]}))
}

test_read_only_root_filesystem if {
	"k8s-read-only-root-fs" in deny_of("kubernetes_pod", pod({"container": [good_ctr, with_sc({"read_only_root_filesystem": false})]}))
	"k8s-read-only-root-fs" in deny_of("kubernetes_pod", pod({"container": [ctr({"security_context": [object.remove(good_sc, ["read_only_root_filesystem"])]})]}))
	not "k8s-read-only-root-fs" in deny_of("kubernetes_pod", pod({"init_container": [with_sc({"read_only_root_filesystem": false})]}))
	not "k8s-read-only-root-fs" in deny_of("kubernetes_pod", pod({"container": [with_sc({"read_only_root_filesystem": marker})]}))
}

# --- ports, resources, images, env ---------------------------------------------------------------

test_no_host_ports if {
	"k8s-no-host-port" in deny_of("kubernetes_pod", pod({"container": [ctr({"port": [{"container_port": 80}, {"container_port": 443, "host_port": 443}]})]}))
	"k8s-no-host-port" in deny_of("kubernetes_pod", pod({"init_container": [ctr({"port": [{"container_port": 8080, "host_port": "8080"}]})]}))
	not "k8s-no-host-port" in deny_of("kubernetes_pod", pod({"container": [ctr({"port": [{"container_port": 80, "host_port": 0}, {"container_port": 443}]})]}))
	not "k8s-no-host-port" in deny_of("kubernetes_pod", pod({"container": [ctr({"port": [{"container_port": 80, "host_port": marker}]})]}))
}

test_cpu_and_memory_limits if {
	"k8s-resource-limits" in deny_of("kubernetes_pod", pod({"container": [good_ctr, ctr({"resources": [{"limits": {"cpu": "1"}}]})]}))
	"k8s-resource-limits" in deny_of("kubernetes_pod", pod({"container": [ctr({"resources": [{"limits": {"memory": "1Gi"}}]})]}))
	"k8s-resource-limits" in deny_of("kubernetes_pod", pod({"container": [ctr({"resources": [{"limits": {"cpu": "", "memory": "1Gi"}}]})]}))
	"k8s-resource-limits" in deny_of("kubernetes_pod", pod({"container": [object.remove(good_ctr, ["resources"])]}))
	not "k8s-resource-limits" in deny_of("kubernetes_pod", pod({"init_container": [object.remove(good_ctr, ["resources"])]}))
	not "k8s-resource-limits" in deny_of("kubernetes_pod", pod({"container": [ctr({"resources": marker})]}))
	not "k8s-resource-limits" in deny_of("kubernetes_pod", pod({"container": [ctr({"resources": [{"limits": marker}]})]}))
	not "k8s-resource-limits" in deny_of("kubernetes_pod", pod({"container": [ctr({"resources": [{"limits": {"cpu": marker, "memory": "1Gi"}}]})]}))
}

test_images_are_pinned if {
	not "k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [ctr({"image": "app:1.0"})]}))
	not "k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [ctr({"image": "registry:5000/team/app:1.0"})]}))
	not "k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [ctr({"image": "app@sha256:0123abcd"})]}))
	not "k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [ctr({"image": "registry.example.com/app:1.0@sha256:0123abcd"})]}))
	"k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [good_ctr, ctr({"image": "app"})]}))
	"k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [good_ctr, ctr({"image": "app:latest"})]}))
	"k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [good_ctr, ctr({"image": "registry:5000/app"})]}))
	"k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [good_ctr, ctr({"image": "registry.example.com/app:1.0@sha512:0123"})]}))
	"k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [good_ctr, ctr({"image": "app:1:2"})]}))
	"k8s-image-pinned" in deny_of("kubernetes_pod", pod({"init_container": [ctr({"image": "busybox"})]}))
	not "k8s-image-pinned" in deny_of("kubernetes_pod", pod({"container": [ctr({"image": marker})]}))
}

test_secrets_are_not_read_into_env if {
	"k8s-secrets-not-in-env" in deny_of("kubernetes_pod", pod({"container": [ctr({"env": [{"name": "A", "value": "x"}, {"name": "B", "value_from": [{"secret_key_ref": [{"name": "s", "key": "k"}]}]}]})]}))
	"k8s-secrets-not-in-env" in deny_of("kubernetes_pod", pod({"init_container": [ctr({"env": [{"name": "B", "value_from": [{"secret_key_ref": [{"name": "s", "key": "k"}]}]}]})]}))
	not "k8s-secrets-not-in-env" in deny_of("kubernetes_pod", pod({"container": [ctr({"env": [{"name": "A", "value": "x"}, {"name": "C", "value_from": [{"config_map_key_ref": [{"name": "c", "key": "k"}]}]}]})]}))
	not "k8s-secrets-not-in-env" in deny_of("kubernetes_pod", pod({"container": [ctr({"env": [{"name": "B", "value_from": marker}]})]}))
}
