# The TLS proxy in front of the blue and green environments: nginx with a Let's Encrypt
# certificate for var.domain. Which environment is live is a tag on this instance; a timer
# on the host reads it through the metadata service (IMDSv2) every few seconds and reloads
# nginx when it changed. Switching is therefore an in-place tag update: no new instance,
# no new certificate, and open SSE streams finish on the old nginx workers.

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
  name   = "${var.name_prefix}-tls-proxy"
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.ubuntu[0].id
  tags   = merge(var.tags, { Project = "kafka-cqrs", Role = "tls-proxy" })
}

resource "aws_security_group" "proxy" {
  name_prefix = "${local.name}-"
  description = "kafka-cqrs TLS proxy: HTTPS and HTTP (ACME, redirect) from anywhere, SSH from the admin CIDR"
  vpc_id      = data.aws_vpc.default.id
  tags        = merge(local.tags, { Name = local.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "web" {
  #checkov:skip=CKV_AWS_260:A public web server: port 80 answers Let's Encrypt HTTP-01 challenges and redirects everything else to HTTPS.
  for_each = { http = 80, https = 443 }

  security_group_id = aws_security_group.proxy.id
  description       = "Public ${each.key}"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.proxy.id
  description       = "SSH from the admin CIDR"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

# Packages and Let's Encrypt over HTTP(S), and the environments' gateways on port 80.
resource "aws_vpc_security_group_egress_rule" "web" {
  for_each = { http = 80, https = 443 }

  security_group_id = aws_security_group.proxy.id
  description       = "Outbound ${each.key}"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = "0.0.0.0/0"
}

# The only way in to an environment's gateway from the internet: through this proxy.
resource "aws_vpc_security_group_ingress_rule" "to_environment" {
  #checkov:skip=CKV_AWS_260:False positive: the source is the proxy's security group (referenced_security_group_id), not 0.0.0.0/0.
  for_each = var.app_security_group_ids

  security_group_id            = each.value
  description                  = "Gateway (HTTP) from the TLS proxy"
  ip_protocol                  = "tcp"
  from_port                    = 80
  to_port                      = 80
  referenced_security_group_id = aws_security_group.proxy.id
}

module "user_data" {
  source = "./user_data"

  domain = var.domain
  email  = var.email
}

resource "aws_instance" "proxy" {
  #checkov:skip=CKV_AWS_88:The proxy is the public entry point; its address is an Elastic IP.
  ami                         = local.ami_id
  instance_type               = var.instance_type
  key_name                    = var.key_name
  vpc_security_group_ids      = [aws_security_group.proxy.id]
  associate_public_ip_address = true
  ebs_optimized               = true

  user_data                   = module.user_data.script
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = 10
    encrypted             = true
    delete_on_termination = true
    tags                  = merge(local.tags, { Name = local.name })
  }

  # Read by kafka-cqrs-retarget on the host (see user_data/proxy.sh.tftpl).
  tags = merge(local.tags, {
    Name            = local.name
    LiveEnvironment = var.live_env
    LiveTarget      = var.target_ip
  })

  lifecycle {
    # The AMI look-up finds a newer image every few weeks: without this a later apply
    # would replace the proxy, and a switch would no longer be an in-place tag update.
    ignore_changes = [ami]
  }
}

# A fixed address, so that the domain's A record survives a replaced instance.
resource "aws_eip" "proxy" {
  domain   = "vpc"
  instance = aws_instance.proxy.id
  tags     = merge(local.tags, { Name = local.name })
}

resource "aws_route53_record" "domain" {
  count = var.route53_zone_id == null ? 0 : 1

  zone_id = var.route53_zone_id
  name    = var.domain
  type    = "A"
  ttl     = 60
  records = [aws_eip.proxy.public_ip]
}
