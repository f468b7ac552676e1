-- An applied fulfilment that lists its lines replaces them wholesale.
DELETE FROM fulfillment_lines WHERE fulfillment_id = ANY($1::uuid[])
