variable "environment" {
  description = "Which of the two environments this host is: blue or green (validated in user_data/)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name; the environment is appended."
  type        = string
  default     = "kafka-cqrs"
}

variable "instance_type" {
  description = "EC2 instance type. It builds the workspace and runs minikube with Kafka, Cassandra and the services: 4 vCPUs and 16 GiB is the smallest that is comfortable."
  type        = string
  default     = "t3.xlarge"
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

variable "root_volume_size_gb" {
  description = "Size of the encrypted gp3 root volume: Rust build output, container images, minikube, Kafka and Cassandra data."
  type        = number
  default     = 60
}

variable "key_name" {
  description = "Name of an existing EC2 key pair whose private key may SSH in as ubuntu."
  type        = string
}

variable "admin_cidr" {
  description = "The one CIDR allowed to SSH in and to reach the host's gateway directly (checks before a switch), e.g. 203.0.113.7/32."
  type        = string

  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && var.admin_cidr != "0.0.0.0/0"
    error_message = "admin_cidr must be a CIDR narrower than 0.0.0.0/0, e.g. your address with /32."
  }
}

variable "http_cidrs" {
  description = "Further CIDRs allowed to the host's gateway on port 80 without the TLS proxy (empty: only the admin CIDR and the proxy)."
  type        = list(string)
  default     = []
}

variable "repo_url" {
  description = "HTTPS URL of this repository that the host clones, without credentials (cargo xtask ec2 up passes the origin remote, SSH converted to HTTPS; validated in user_data/)."
  type        = string
}

variable "git_ref" {
  description = "Branch, tag or commit of the repository to build and run (validated in user_data/)."
  type        = string
  default     = "main"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
