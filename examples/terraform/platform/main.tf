# A platform change planned, approved and applied by workflow-templates/platform-pipeline.yaml.
# Built-in resources only (terraform_data), so it plans and applies without downloading a
# provider; a real configuration adds azurerm resources and a remote state backend, e.g.
#   terraform { backend "azurerm" {} }   with -backend-config from a ConfigMap or Secret.
terraform {
  required_version = ">= 1.4"
}

variable "environment" {
  type    = string
  default = "dev"
}

resource "terraform_data" "lake_container" {
  input = {
    name = "lake-${var.environment}"
    tier = "hot"
  }
}

resource "terraform_data" "serving_namespace" {
  input = "medallion-serving-${var.environment}"
}

output "lake_container" {
  value = terraform_data.lake_container.output
}
