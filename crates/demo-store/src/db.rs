//! SQLite: opening, migrations, seeding and the queries the store runs. Every function
//! here is synchronous and takes a connection (or a transaction, which derefs to one);
//! the async edge is in `api.rs`. Buyer messages' SQL is in `db/conversations.rs`.

pub mod conversations;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{ApiError, DemoStoreError};
use crate::model::{
    Author, ConversationStatus, Coupon, Customer, CustomerView, MessageKind, Order, PasswordReset, Product,
};
use crate::seed::{self, Seed, SeedConversation};

/// Append-only: never edit a shipped migration, add a new one.
const MIGRATIONS: &[&str] =
    &[include_str!("../migrations/0001_init.sql"), include_str!("../migrations/0002_messages.sql")];

fn db_error(path: &Path) -> impl Fn(rusqlite::Error) -> DemoStoreError + '_ {
    move |source| DemoStoreError::Database { path: path.display().to_string(), source }
}

/// Opens a connection with the store's pragmas. Readers are `query_only`.
pub fn connect(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if read_only {
        conn.pragma_update(None, "query_only", "ON")?;
    } else {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite refused WAL journal mode");
        }
        // A refund or a gift-card credit the client was told about must survive a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(conn)
}

/// Opens the writer connection, applies migrations and seeds an empty database; then,
/// once, seeds the conversations from the sample cases in `cases_dir` (if given).
pub fn open_and_prepare(path: &Path, seed_dir: &Path, cases_dir: Option<&Path>) -> Result<Connection, DemoStoreError> {
    let mut conn = connect(path, false).map_err(db_error(path))?;
    migrate(&mut conn, path)?;
    let seeded: bool =
        conn.query_row("SELECT EXISTS (SELECT 1 FROM seed_info)", [], |r| r.get(0)).map_err(db_error(path))?;
    if !seeded {
        let seed = Seed::load(seed_dir)?;
        insert_seed(&mut conn, &seed).map_err(db_error(path))?;
        tracing::info!(
            customers = seed.customers.len(),
            orders = seed.orders.len(),
            products = seed.products.len(),
            "seeded demo store"
        );
    }
    if let Some(cases_dir) = cases_dir
        && !conversations::seeded(&conn).map_err(db_error(path))?
    {
        let cases = seed::load_cases(cases_dir)?;
        let seeded = insert_conversations(&mut conn, &cases, cases_dir)?;
        tracing::info!(conversations = seeded, cases = %cases_dir.display(), "seeded buyer conversations");
    }
    Ok(conn)
}

/// Inserts the sample cases' conversations whose buyer is a customer of the store, in one
/// transaction with the mark that they were seeded. An order is kept only if it is the
/// buyer's. Returns how many were inserted.
fn insert_conversations(
    conn: &mut Connection,
    cases: &[SeedConversation],
    cases_dir: &Path,
) -> Result<usize, DemoStoreError> {
    let seed_error = |source: &str, e: ApiError| DemoStoreError::Seed {
        path: cases_dir.join(source).display().to_string(),
        message: e.message,
    };
    let tx = conn.transaction().map_err(db_error(cases_dir))?;
    let mut inserted = 0;
    for case in cases {
        let insert = || -> Result<bool, ApiError> {
            let Some(buyer_name) = conversations::customer_name(&tx, &case.buyer_id)? else {
                return Ok(false);
            };
            let mut order_id = None;
            for id in &case.order_ids {
                if conversations::order_owner(&tx, id)?.as_deref() == Some(case.buyer_id.as_str()) {
                    order_id = Some(id.as_str());
                    break;
                }
            }
            let (Some(first), Some(last)) = (case.messages.first(), case.messages.last()) else {
                return Ok(false);
            };
            let status = if last.from == "customer" { ConversationStatus::Open } else { ConversationStatus::Waiting };
            let id = conversations::insert_conversation(&tx, &case.buyer_id, order_id, status, &first.at)?;
            for m in &case.messages {
                let (author, name) = if m.from == "customer" {
                    (Author::Buyer, buyer_name.as_str())
                } else {
                    (Author::Seller, "seller")
                };
                conversations::insert_message(&tx, &id, author, MessageKind::Message, name, &m.text, &m.at)?;
            }
            conversations::touch(&tx, &id, status, None, &last.at)?;
            Ok(true)
        };
        if insert().map_err(|e| seed_error(&case.source, e))? {
            inserted += 1;
        }
    }
    conversations::mark_seeded(&tx, &cases_dir.display().to_string(), inserted).map_err(db_error(cases_dir))?;
    tx.commit().map_err(db_error(cases_dir))?;
    Ok(inserted)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DemoStoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_error(path))?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(DemoStoreError::Schema {
            path: path.display().to_string(),
            message: format!("database schema version {current} is newer than this build knows ({})", MIGRATIONS.len()),
        });
    }
    if current > 0 && current < MIGRATIONS.len() {
        // Back up before changing a database that already holds state.
        let backup = format!("{}.v{current}.bak", path.display());
        conn.execute("VACUUM INTO ?1", [&backup]).map_err(db_error(path))?;
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(db_error(path))?;
        tx.execute_batch(sql).map_err(db_error(path))?;
        tx.pragma_update(None, "user_version", count(index + 1)).map_err(db_error(path))?;
        tx.commit().map_err(db_error(path))?;
    }
    Ok(())
}

fn insert_seed(conn: &mut Connection, seed: &Seed) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for c in &seed.customers {
        insert_customer(&tx, c)?;
    }
    for p in &seed.products {
        tx.execute(
            "INSERT INTO products (product_id, name, doc) VALUES (?1, ?2, ?3)",
            params![p.product_id, p.name, to_doc(p)?],
        )?;
    }
    for o in &seed.orders {
        tx.execute(
            "INSERT INTO orders (order_id, customer_id, status, doc) VALUES (?1, ?2, ?3, ?4)",
            params![o.order_id, o.customer_id, o.status.as_str(), to_doc(o)?],
        )?;
    }
    tx.execute(
        "INSERT INTO seed_info (id, seeded_at, customers, orders, products)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![now(), count(seed.customers.len()), count(seed.orders.len()), count(seed.products.len())],
    )?;
    tx.commit()
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_doc<T: serde::Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

fn from_doc<T: serde::de::DeserializeOwned>(doc: &str) -> Result<T, ApiError> {
    Ok(serde_json::from_str(doc)?)
}

/// The current time, RFC 3339 in UTC.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// The key under which an email is unique (case-insensitive).
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A customer's row: `customer_id, email_key, first_name, last_name, zip, doc` (`?1`…`?6`).
fn customer_row(c: &Customer) -> rusqlite::Result<(&str, String, &str, &str, &str, String)> {
    Ok((&c.customer_id, email_key(&c.email), &c.name.first_name, &c.name.last_name, &c.default_address.zip, to_doc(c)?))
}

fn insert_customer(conn: &Connection, c: &Customer) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO customers (customer_id, email_key, first_name, last_name, zip, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        customer_row(c)?,
    )
}

/// The document `select` (a query of one `doc` by `?1`) finds for `id`, if any.
fn doc_by_id<T: serde::de::DeserializeOwned>(conn: &Connection, select: &str, id: &str) -> Result<Option<T>, ApiError> {
    let doc: Option<String> = conn.prepare_cached(select)?.query_row([id], |r| r.get(0)).optional()?;
    doc.as_deref().map(from_doc).transpose()
}

pub fn customer(conn: &Connection, id: &str) -> Result<Option<Customer>, ApiError> {
    doc_by_id(conn, "SELECT doc FROM customers WHERE customer_id = ?1", id)
}

pub fn save_customer(conn: &Connection, c: &Customer) -> Result<(), ApiError> {
    conn.prepare_cached(
        "UPDATE customers SET email_key = ?2, first_name = ?3, last_name = ?4, zip = ?5, doc = ?6
         WHERE customer_id = ?1",
    )?
    .execute(customer_row(c)?)?;
    Ok(())
}

/// The customer that holds this email (case-insensitive), if any.
pub fn customer_id_by_email(conn: &Connection, email: &str) -> Result<Option<String>, ApiError> {
    Ok(conn
        .prepare_cached("SELECT customer_id FROM customers WHERE email_key = ?1")?
        .query_row([email_key(email)], |r| r.get(0))
        .optional()?)
}

/// Customers with this first and last name (case-insensitive) and zip code.
pub fn customer_ids_by_name_zip(
    conn: &Connection,
    first_name: &str,
    last_name: &str,
    zip: &str,
) -> Result<Vec<String>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT customer_id FROM customers
         WHERE first_name = ?1 COLLATE NOCASE AND last_name = ?2 COLLATE NOCASE AND zip = ?3
         ORDER BY customer_id",
    )?;
    let ids = stmt
        .query_map(params![first_name.trim(), last_name.trim(), zip.trim()], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// A row's first six columns as text, for a caller that checks them before it builds its type.
pub(crate) fn six_texts(r: &rusqlite::Row<'_>) -> rusqlite::Result<[String; 6]> {
    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?])
}

/// The customer with its coupons and password resets.
pub fn customer_view(conn: &Connection, customer: Customer) -> Result<CustomerView, ApiError> {
    let coupons = conn
        .prepare_cached(
            "SELECT code, customer_id, amount, currency, reason, created_at FROM coupons
             WHERE customer_id = ?1 ORDER BY created_at, code",
        )?
        .query_map([&customer.customer_id], six_texts)?
        .map(|row| {
            let [code, customer_id, amount, currency, reason, created_at] = row?;
            Ok(Coupon {
                code,
                customer_id,
                amount: amount.parse().map_err(ApiError::internal)?,
                currency,
                reason,
                created_at,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let password_resets = conn
        .prepare_cached(
            "SELECT reference, customer_id, sent_to, created_at FROM password_resets
             WHERE customer_id = ?1 ORDER BY created_at, reference",
        )?
        .query_map([&customer.customer_id], |r| {
            Ok(PasswordReset {
                reference: r.get(0)?,
                customer_id: r.get(1)?,
                sent_to: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(CustomerView { customer, coupons, password_resets })
}

pub fn insert_coupon(conn: &Connection, coupon: &Coupon) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO coupons (code, customer_id, amount, currency, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            coupon.code,
            coupon.customer_id,
            coupon.amount.to_string(),
            coupon.currency,
            coupon.reason,
            coupon.created_at
        ],
    )?;
    Ok(())
}

pub fn insert_password_reset(conn: &Connection, reset: &PasswordReset) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO password_resets (reference, customer_id, sent_to, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![reset.reference, reset.customer_id, reset.sent_to, reset.created_at],
    )?;
    Ok(())
}

pub fn order(conn: &Connection, id: &str) -> Result<Option<Order>, ApiError> {
    doc_by_id(conn, "SELECT doc FROM orders WHERE order_id = ?1", id)
}

pub fn save_order(conn: &Connection, o: &Order) -> Result<(), ApiError> {
    conn.prepare_cached("UPDATE orders SET status = ?2, doc = ?3 WHERE order_id = ?1")?.execute(params![
        o.order_id,
        o.status.as_str(),
        to_doc(o)?
    ])?;
    Ok(())
}

pub fn product(conn: &Connection, id: &str) -> Result<Option<Product>, ApiError> {
    doc_by_id(conn, "SELECT doc FROM products WHERE product_id = ?1", id)
}

/// Every product type, by name.
pub fn products(conn: &Connection) -> Result<Vec<Product>, ApiError> {
    conn.prepare_cached("SELECT doc FROM products ORDER BY name, product_id")?
        .query_map([], |r| r.get::<_, String>(0))?
        .map(|doc| from_doc(&doc?))
        .collect()
}

/// A stored outcome of an idempotent write.
#[derive(Debug)]
pub struct StoredOutcome {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

pub fn idempotency_lookup(conn: &Connection, key: &str) -> Result<Option<StoredOutcome>, ApiError> {
    Ok(conn
        .prepare_cached("SELECT fingerprint, status, body FROM idempotency_keys WHERE key = ?1")?
        .query_row([key], |r| Ok(StoredOutcome { fingerprint: r.get(0)?, status: r.get(1)?, body: r.get(2)? }))
        .optional()?)
}

pub fn idempotency_store(conn: &Connection, key: &str, outcome: &StoredOutcome) -> Result<(), ApiError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![key, outcome.fingerprint, outcome.status, outcome.body, now()])?;
    Ok(())
}
