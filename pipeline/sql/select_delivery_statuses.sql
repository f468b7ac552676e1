-- The final audit status of some deliveries, for `pipeline replay --status`.
SELECT w.platform, w.external_event_id, w.status
FROM webhook_events w
JOIN unnest($1::text[], $2::text[]) AS d (platform, delivery_id)
  ON w.platform = d.platform AND w.external_event_id = d.delivery_id
