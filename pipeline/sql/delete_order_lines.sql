-- An applied order snapshot replaces its lines wholesale.
DELETE FROM order_lines WHERE order_id = ANY($1::uuid[])
