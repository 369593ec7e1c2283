# NovaCron's own objects managed with Terraform (docs/terraform.md).
# The provider comes from `novacron terraform install-provider` (dev_overrides); the control
# API address and token from NOVACRON_API_URL and NOVACRON_API_TOKEN.

terraform {
  required_providers {
    novacron = { source = "novacron/novacron" }
  }
}

provider "novacron" {}

# A Rego policy the policy gate evaluates (policy_id is the module's package).
resource "novacron_policy" "payments_scale_limit" {
  policy_id   = "novacron.teams.payments.scale_limit"
  policy_type = "resource_allocation"
  enforcement = "block"
  rego        = <<-EOT
    package novacron.teams.payments.scale_limit

    import rego.v1

    default allow := true

    deny contains msg if {
    	input.decision.params.delta > 5
    	msg := "payments scales by at most 5 VMs at once"
    }
  EOT
}

# A runbook the gate and the executor serve (selectable: a run_runbook decision may pick it).
resource "novacron_runbook" "payments_drain" {
  runbook_id = "payments-drain"
  yaml = yamlencode({
    metadata = { id = "payments-drain", name = "Drain a payments node", selectable = true }
    steps = [
      { id = "drain", name = "Take the node out of rotation", action_type = "noop", action = "drain" },
    ]
  })
}

# The declared configuration drift is measured against.
resource "novacron_baseline" "payments_db" {
  resource_id   = "aws_db_instance.payments"
  resource_type = "aws_db_instance"
  config = jsonencode({
    instance_class      = "db.r6g.large"
    storage_encrypted   = true
    publicly_accessible = false
  })
}

# A difference drift should not report.
resource "novacron_drift_ignore" "build_tag" {
  path          = "/tags/build"
  resource_type = "aws_*"
  reason        = "set by CI on every deploy"
}

# An accepted risk, with its review date.
resource "novacron_compliance_exception" "legacy_db" {
  control_id   = "aws-rds-multi-az"
  resource_id  = "aws_db_instance.legacy"
  reason       = "single-AZ until the Q3 migration"
  evidence_url = "https://tickets.example.com/SEC-123"
  expires_at   = "2027-09-30T00:00:00Z"
}

data "novacron_compliance_score" "all" {}

data "novacron_drift_findings" "open" {}

output "compliance_score" {
  value = data.novacron_compliance_score.all.score
}

output "drifted_resources" {
  value = data.novacron_drift_findings.open.resource_ids
}
