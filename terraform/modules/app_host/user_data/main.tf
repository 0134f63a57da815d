# The application host's user data: host.sh.tftpl rendered with the values below. A module
# of its own, without providers, so that `cargo xtask test` renders it with OpenTofu itself
# (`tofu console`, offline) and runs bash -n and shellcheck on exactly what a host runs.
# The validations are strict because every value lands in a line of that shell script.
terraform {
  required_version = ">= 1.6"
}

variable "environment" {
  description = "Which of the two environments the host is: blue or green."
  type        = string

  validation {
    condition     = contains(["blue", "green"], var.environment)
    error_message = "The environment is blue or green: the workspace of terraform/environments/app (`tofu workspace select -or-create blue`), never the default one."
  }
}

variable "repo_url" {
  description = "HTTPS URL of the repository the host clones. The host's egress allows HTTP(S) only, and the URL is kept in user data and state, so it holds no credentials."
  type        = string

  validation {
    condition     = can(regex("^https://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)+/?$", var.repo_url))
    error_message = "repo_url must be an https:// URL without credentials or unusual characters, e.g. https://github.com/OWNER/REPO.git (the host can reach HTTP(S) only; `cargo xtask ec2 up` converts an SSH origin)."
  }
}

variable "git_ref" {
  description = "Branch, tag or commit the host checks out."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9._/-]*$", var.git_ref))
    error_message = "git_ref must be a branch, tag or commit: letters, digits and . _ / - only, not starting with - or . or /."
  }
}

variable "proxy_cidr" {
  description = "The VPC's CIDR, where the TLS proxy is: the host believes the client address in X-Forwarded-For from there only."
  type        = string

  validation {
    condition     = can(cidrhost(var.proxy_cidr, 0))
    error_message = "proxy_cidr must be a CIDR such as 172.31.0.0/16."
  }
}

locals {
  script = templatefile("${path.module}/host.sh.tftpl", {
    environment = var.environment
    repo_url    = var.repo_url
    git_ref     = var.git_ref
    proxy_cidr  = var.proxy_cidr
  })
}

output "script" {
  description = "The user-data script that cloud-init runs at the host's first boot."
  value       = local.script
}
