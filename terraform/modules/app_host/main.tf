# One application host: Ubuntu with Docker and minikube, running the platform the way the
# original did (images loaded into minikube, the Kubernetes manifests applied), with the
# cluster's ingress exposed on the host's port 80 (user_data/host.sh.tftpl).

data "aws_vpc" "default" {
  default = true
}

data "aws_ami" "ubuntu" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd*/ubuntu-*-${var.ubuntu_release}-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  name   = "${var.name_prefix}-${var.environment}"
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.ubuntu[0].id
  tags = merge(var.tags, {
    Project     = "kafka-cqrs"
    Environment = var.environment
  })
}

resource "aws_security_group" "host" {
  name_prefix = "${local.name}-"
  description = "kafka-cqrs ${var.environment}: SSH and HTTP from the admin CIDR, HTTP from the TLS proxy"
  vpc_id      = data.aws_vpc.default.id
  tags        = merge(local.tags, { Name = local.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.host.id
  description       = "SSH from the admin CIDR"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

# The TLS proxy's own rule (modules/tls_proxy) opens port 80 to the proxy; these open it
# to the admin, whose checks before a switch go to this host's gateway directly.
resource "aws_vpc_security_group_ingress_rule" "http" {
  for_each = toset(concat([var.admin_cidr], var.http_cidrs))

  security_group_id = aws_security_group.host.id
  description       = "Gateway (HTTP) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

# Packages, crates, container images and the git checkout all come over HTTP(S).
resource "aws_vpc_security_group_egress_rule" "web" {
  for_each = { http = 80, https = 443 }

  security_group_id = aws_security_group.host.id
  description       = "Outbound ${each.key}"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = "0.0.0.0/0"
}

module "user_data" {
  source = "./user_data"

  environment = var.environment
  repo_url    = var.repo_url
  git_ref     = var.git_ref
  proxy_cidr  = data.aws_vpc.default.cidr_block
}

resource "aws_instance" "host" {
  #checkov:skip=CKV_AWS_88:The host needs a public address: SSH and the checks before a switch come from the admin CIDR, and a bastion or NAT would cost more than the demo.
  ami                         = local.ami_id
  instance_type               = var.instance_type
  key_name                    = var.key_name
  vpc_security_group_ids      = [aws_security_group.host.id]
  associate_public_ip_address = true
  ebs_optimized               = true

  user_data = module.user_data.script
  # A changed script means a new host: cloud-init runs user data on the first boot only.
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    delete_on_termination = true
    tags                  = merge(local.tags, { Name = local.name })
  }

  tags = merge(local.tags, { Name = local.name })

  lifecycle {
    # The AMI look-up finds a newer image every few weeks: without this a later apply
    # would replace the host. A new host comes from a new ref (user data), not a new AMI.
    ignore_changes = [ami]
  }
}
