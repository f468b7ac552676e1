-- Variants of applied complete snapshots (or deleted products) that the snapshot no longer lists.
UPDATE product_variants SET deleted_at = now(), updated_at = now()
WHERE product_id = ANY($1::uuid[])
  AND deleted_at IS NULL
  AND NOT (id = ANY($2::uuid[]))
