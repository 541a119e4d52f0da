output "vidqueue_settings" {
  description = "The VIDQUEUE_* settings that point vidqueue at these buckets."
  value       = local.settings
}

output "vidqueue_env" {
  description = "The same settings as lines for /etc/vidqueue/vidqueue.env (no credentials)."
  value = join("", [
    for name in sort(keys(local.settings)) : "${name}=${local.settings[name]}\n"
  ])
}
