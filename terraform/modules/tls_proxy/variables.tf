variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "kafka-cqrs"
}

variable "domain" {
  description = "The domain the proxy serves and holds a Let's Encrypt certificate for; its DNS A record must point at the proxy's public_ip (validated in user_data/)."
  type        = string
}

variable "email" {
  description = "Contact address for the Let's Encrypt account (validated in user_data/)."
  type        = string
}

variable "live_env" {
  description = "The environment the proxy forwards to: blue or green."
  type        = string

  validation {
    condition     = contains(["blue", "green"], var.live_env)
    error_message = "live_env is blue or green."
  }
}

variable "target_ip" {
  description = "Private address of the live environment's host (its private_ip output)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}$", var.target_ip))
    error_message = "target_ip must be an IPv4 address."
  }
}

variable "app_security_group_ids" {
  description = "Security groups of the running environments by name (blue, green): each gets a rule that lets the proxy reach its gateway, so a switch never waits for a rule."
  type        = map(string)
}

variable "key_name" {
  description = "Name of an existing EC2 key pair whose private key may SSH in as ubuntu."
  type        = string
}

variable "admin_cidr" {
  description = "The one CIDR allowed to SSH in, e.g. 203.0.113.7/32."
  type        = string

  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && var.admin_cidr != "0.0.0.0/0"
    error_message = "admin_cidr must be a CIDR narrower than 0.0.0.0/0, e.g. your address with /32."
  }
}

variable "instance_type" {
  description = "EC2 instance type; nginx alone needs little."
  type        = string
  default     = "t3.micro"
}

variable "ami_id" {
  description = "AMI to boot. Null: the newest Canonical Ubuntu image of ubuntu_release for x86_64."
  type        = string
  default     = null
}

variable "ubuntu_release" {
  description = "Ubuntu LTS release looked up when ami_id is null, e.g. 24.04."
  type        = string
  default     = "24.04"
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of the domain. Set it to have the A record created here; null: point the domain at public_ip yourself."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags for every resource (keys without spaces or slashes: the instance's tags are readable through its metadata service)."
  type        = map(string)
  default     = {}
}
