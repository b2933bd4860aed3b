-- The demo shop's schema and products, run by the postgres image on first
-- start (/docker-entrypoint-initdb.d) over its unix socket, before it
-- listens on TCP: set-up is not part of the traced traffic. The same
-- products as demo/cmd/demo seeds for `make demo`.
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL, stock int NOT NULL);
CREATE TABLE payments (id bigserial PRIMARY KEY, product_id int NOT NULL, quantity int NOT NULL,
  amount_cents bigint NOT NULL, email text NOT NULL, created timestamptz NOT NULL DEFAULT now());
INSERT INTO products VALUES
  (1, 'Loom shuttle', 1299, 40), (2, 'Linen thread, 500 m', 899, 120), (3, 'Warp beam', 4999, 8),
  (4, 'Heddle set', 2450, 25), (5, 'Reed, 60 dent', 3100, 12), (6, 'Tapestry needle', 350, 300),
  (7, 'Bobbin winder', 2799, 15), (8, 'Wool yarn, indigo', 1150, 60), (9, 'Cotton warp, 1 kg', 1999, 30),
  (10, 'Inkle loom', 6900, 5), (11, 'Weaving sword', 1590, 22), (12, 'Pattern book', 2200, 18);
