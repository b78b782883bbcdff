-- The demo shop's schema (PostgreSQL side), idempotent: run at every `ducktail demo` start.
CREATE TABLE IF NOT EXISTS customers (
  customer_id bigserial PRIMARY KEY,
  name        text NOT NULL,
  email       text NOT NULL,
  city        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
  product_id bigserial PRIMARY KEY,
  name       text NOT NULL,
  category   text NOT NULL,
  price      numeric(10,2) NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
  order_id    bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers,
  product_id  bigint NOT NULL REFERENCES products,
  price       numeric(10,2) NOT NULL,
  quantity    int NOT NULL CHECK (quantity > 0),
  status      text NOT NULL DEFAULT 'pending'
              CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
  order_date  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_order_date ON orders (order_date);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status) WHERE status IN ('pending', 'paid', 'shipped');

-- Seed: 200 customers and 50 products, once.
INSERT INTO customers (name, email, city)
SELECT 'Customer ' || g, 'customer' || g || '@example.com',
       (ARRAY['Lisbon', 'Berlin', 'Milan', 'Lyon', 'Krakow', 'Dublin', 'Porto', 'Madrid'])[1 + g % 8]
  FROM generate_series(1, 200) g
 WHERE NOT EXISTS (SELECT 1 FROM customers);

INSERT INTO products (name, category, price)
SELECT 'Product ' || g, (ARRAY['books', 'games', 'garden', 'kitchen', 'music'])[1 + g % 5],
       round((5 + (g * 37 % 200) + (g % 100) / 100.0)::numeric, 2)
  FROM generate_series(1, 50) g
 WHERE NOT EXISTS (SELECT 1 FROM products);
