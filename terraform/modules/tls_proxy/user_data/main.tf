# The TLS proxy's user data: proxy.sh.tftpl rendered with the values below. A module of its
# own, without providers, so that `cargo xtask test` renders it with OpenTofu itself
# (`tofu console`, offline) and runs bash -n and shellcheck on exactly what the proxy runs.
# The validations are strict because every value lands in a line of that shell script.
terraform {
  required_version = ">= 1.6"
}

variable "domain" {
  description = "The domain the proxy serves and holds a Let's Encrypt certificate for."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.domain))
    error_message = "domain must be a lower-case DNS name such as demo.example.com."
  }
}

variable "email" {
  description = "Contact address for the Let's Encrypt account (expiry notices)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$", var.email))
    error_message = "email must be an address such as ops@example.com."
  }
}

locals {
  script = templatefile("${path.module}/proxy.sh.tftpl", {
    domain = var.domain
    email  = var.email
  })
}

output "script" {
  description = "The user-data script that cloud-init runs at the proxy's first boot."
  value       = local.script
}
