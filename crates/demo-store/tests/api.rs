//! The demo store over real HTTP: each test starts the server on an ephemeral loopback
//! port with its own SQLite file seeded from `assets/demo-store`, and talks to it with
//! reqwest. Amounts are compared as exact decimal strings.

#![allow(clippy::unwrap_used)]

#[path = "api/messages.rs"]
mod messages;
#[path = "api/rules.rs"]
mod rules;

use std::path::PathBuf;

use countersign_demo_store::{ApiToken, DEFAULT_SEED_DIR, DemoStore, ServerHandle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-3f9a1c";
const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

struct Harness {
    dir: tempfile::TempDir,
    server: ServerHandle,
    base: String,
    client: reqwest::Client,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(&dir.path().join("store.sqlite3"), DEFAULT_SEED_DIR.into()).await;
        Harness::over(dir, server)
    }

    fn over(dir: tempfile::TempDir, server: ServerHandle) -> Harness {
        Harness {
            base: format!("http://{}", server.local_addr()),
            dir,
            server,
            client: countersign_http::client_builder().build().unwrap(),
        }
    }

    /// Stops the server and opens the same database again. The seed folder given is one
    /// that does not exist, so the state can only come from the file.
    async fn restart(self) -> Harness {
        let Harness { dir, server, .. } = self;
        server.shutdown().await.unwrap();
        let server = serve(&dir.path().join("store.sqlite3"), dir.path().join("no-seed-here")).await;
        Harness::over(dir, server)
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        key: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("response to {path} is not JSON ({e}): {text}"));
        (status, value, headers)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, body, _) = self.request(Method::GET, path, None, None, Some(TOKEN)).await;
        (status, body)
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, body, _) = self.request(method, path, Some(body.to_string()), None, Some(TOKEN)).await;
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, body).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, body).await
    }

    async fn post_with_key(&self, path: &str, body: Value, key: &str) -> (StatusCode, Value, bool) {
        let (status, body, headers) =
            self.request(Method::POST, path, Some(body.to_string()), Some(key), Some(TOKEN)).await;
        let replayed = headers.get("idempotent-replayed").is_some();
        (status, body, replayed)
    }

    /// What a GET of `path` answers; anything but 200 fails the test.
    async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn order(&self, id: &str) -> Value {
        self.get_ok(&format!("/orders/{id}")).await
    }

    async fn customer(&self, id: &str) -> Value {
        self.get_ok(&format!("/customers/{id}")).await
    }

    /// A GET of `path` must be refused with the `expected` status and error code.
    async fn get_refused(&self, path: &str, expected: (StatusCode, &str)) {
        let (status, error) = self.get(path).await;
        assert_eq!((status, code(&error)), expected, "GET {path}: {error}");
    }

    /// `body` sent to `path` must be refused with the `expected` status and error code.
    async fn refuses(&self, method: Method, path: &str, body: Value, expected: (StatusCode, &str)) {
        let (status, error) = self.send(method.clone(), path, body.clone()).await;
        assert_eq!((status, code(&error)), expected, "{method} {path} {body}: {error}");
    }

    async fn post_refused(&self, path: &str, body: Value, expected: (StatusCode, &str)) {
        self.refuses(Method::POST, path, body, expected).await;
    }

    async fn put_refused(&self, path: &str, body: Value, expected: (StatusCode, &str)) {
        self.refuses(Method::PUT, path, body, expected).await;
    }

    /// Sends each body of `cases` to `path`: each must be refused with its status and error
    /// code.
    async fn refuses_each<'a>(
        &self,
        method: Method,
        path: &str,
        cases: impl IntoIterator<Item = (Value, StatusCode, &'a str)>,
    ) {
        for (body, expected_status, expected_code) in cases {
            self.refuses(method.clone(), path, body, (expected_status, expected_code)).await;
        }
    }

    async fn balance(&self, customer: &str, method: &str) -> String {
        payment_method(&self.customer(customer).await, method)["balance"].as_str().unwrap().to_owned()
    }
}

async fn serve(db: &std::path::Path, seed: PathBuf) -> ServerHandle {
    let store = DemoStore::open(db, seed).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    store.serve(listener, ApiToken::new(TOKEN).unwrap()).unwrap()
}

/// The address form filled in for Springfield, IL, under the page's CSRF token.
fn springfield_form(csrf: &str) -> [(&str, &str); 7] {
    [
        ("csrf_token", csrf),
        ("address1", "1 Main St"),
        ("address2", ""),
        ("city", "Springfield"),
        ("state", "IL"),
        ("country", "USA"),
        ("zip", "62701"),
    ]
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn payment_method<'a>(customer: &'a Value, id: &str) -> &'a Value {
    customer["payment_methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {customer}"))
}

/// `(transaction_type, amount, payment_method_id)` of each entry.
fn history(order: &Value) -> Vec<(String, String, String)> {
    order["payment_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["currency"], "USD");
            (
                t["transaction_type"].as_str().unwrap().to_owned(),
                t["amount"].as_str().unwrap().to_owned(),
                t["payment_method_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn tx(kind: &str, amount: &str, method: &str) -> (String, String, String) {
    (kind.to_owned(), amount.to_owned(), method.to_owned())
}

// ------------------------------------------------------------------ auth and framing

#[tokio::test]
async fn health_needs_no_token() {
    let h = Harness::start().await;
    let (status, body, _) = h.request(Method::GET, "/health", None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok" }));
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_with_a_json_error() {
    let h = Harness::start().await;
    let cases = [
        (Method::GET, "/orders/W2611340", None),
        (Method::GET, "/orders/W2611340", Some("wrong-token")),
        (Method::GET, "/orders/W2611340", Some("")),
        (Method::GET, "/no/such/route", None),
        (Method::POST, "/orders/W8328622/cancel", None),
    ];
    for (method, path, token) in cases {
        let body = json!({ "reason": "no longer needed" }).to_string();
        let (status, error, headers) = h.request(method.clone(), path, Some(body), None, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {token:?}");
        assert_eq!(code(&error), "unauthorized");
        assert_eq!(headers["www-authenticate"], "Bearer");
    }
    // A refused write must not have happened.
    assert_eq!(h.order("W8328622").await["status"], "pending");
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_shapes_are_422() {
    let h = Harness::start().await;
    let cases = [
        ("{\"reason\": ", StatusCode::BAD_REQUEST, "malformed_json"),
        ("not json", StatusCode::BAD_REQUEST, "malformed_json"),
        ("", StatusCode::BAD_REQUEST, "malformed_json"),
        ("{\"reason\": 42}", StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ("{}", StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ("[\"no longer needed\"]", StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ("{\"reason\": \"no longer needed\", \"force\": true}", StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
    ];
    for (body, expected_status, expected_code) in cases {
        let (status, error, _) =
            h.request(Method::POST, "/orders/W8328622/cancel", Some(body.to_owned()), None, Some(TOKEN)).await;
        assert_eq!(status, expected_status, "body {body:?}: {error}");
        assert_eq!(code(&error), expected_code, "body {body:?}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, error) =
        h.put("/orders/W4923227/payment-method", json!({ "payment_method_id": ["paypal_1621947"] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&error), "invalid_request");

    h.get_refused("/orders/W2611340/nope", (StatusCode::NOT_FOUND, "not_found")).await;
    let (status, error, _) = h.request(Method::DELETE, "/orders/W2611340", None, None, Some(TOKEN)).await;
    assert_eq!((status, code(&error)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    assert_eq!(h.order("W8328622").await["status"], "pending");
}

// ------------------------------------------------------------------ reads

#[tokio::test]
async fn finds_a_customer_by_email() {
    let h = Harness::start().await;
    let (status, customer) = h.get("/customers/lookup?email=Noah.Brown7922@example.com").await;
    assert_eq!(status, StatusCode::OK, "email lookup is case-insensitive");
    assert_eq!(customer["customer_id"], "noah_brown_6181");
    assert_eq!(customer["order_ids"], json!(["#W7678072"]));

    h.get_refused("/customers/lookup?email=nobody@example.com", (StatusCode::NOT_FOUND, "customer_not_found")).await;
    h.get_refused("/customers/lookup", (StatusCode::BAD_REQUEST, "invalid_query")).await;
    h.get_refused("/customers/lookup?email=a@b.co&zip=10083", (StatusCode::BAD_REQUEST, "invalid_query")).await;
}

#[tokio::test]
async fn finds_a_customer_by_name_and_zip() {
    let h = Harness::start().await;
    let (status, customer) = h.get("/customers/lookup?first_name=james&last_name=Li&zip=10083").await;
    assert_eq!(status, StatusCode::OK, "{customer}");
    assert_eq!(customer["customer_id"], "james_li_5688");
    assert_eq!(customer["email"], "james.li4495@example.com");

    h.get_refused(
        "/customers/lookup?first_name=James&last_name=Li&zip=99999",
        (StatusCode::NOT_FOUND, "customer_not_found"),
    )
    .await;
    h.get_refused("/customers/lookup?first_name=James&last_name=Li", (StatusCode::BAD_REQUEST, "invalid_query")).await;
}

#[tokio::test]
async fn shows_customer_details_with_payment_methods_and_balances() {
    let h = Harness::start().await;
    let customer = h.customer("emma_kovacs_7176").await;
    assert_eq!(customer["name"], json!({ "first_name": "Emma", "last_name": "Kovacs" }));
    assert_eq!(
        payment_method(&customer, "gift_card_7777844"),
        &json!({ "id": "gift_card_7777844", "source": "gift_card", "balance": "79.00", "currency": "USD" })
    );
    assert_eq!(payment_method(&customer, "paypal_1038468"), &json!({ "id": "paypal_1038468", "source": "paypal" }));
    assert!(customer["default_address"]["zip"].is_string());
    assert_eq!(customer["coupons"], json!([]));
    assert_eq!(customer["password_resets"], json!([]));

    h.get_refused("/customers/nobody_0000", (StatusCode::NOT_FOUND, "customer_not_found")).await;
}

#[tokio::test]
async fn shows_order_details_with_payment_history_and_totals() {
    let h = Harness::start().await;
    let order = h.order("W2611340").await;
    assert_eq!(order, h.order("%23W2611340").await, "`#` may be sent as %23 or left out");
    assert_eq!(order["order_id"], "#W2611340");
    assert_eq!(order["customer_id"], "james_li_5688");
    assert_eq!(order["status"], "processed");
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["items"][0]["item_id"], "6469567736");
    assert_eq!(order["items"][0]["price"], "47.84");
    assert_eq!(order["items"][1]["price"], "488.81");
    assert_eq!(history(&order), vec![tx("payment", "536.65", "gift_card_1725971")]);
    assert_eq!(
        order["totals"],
        json!({ "items_total": "536.65", "paid": "536.65", "refunded": "0.00", "refundable": "536.65" })
    );
    assert_eq!(order["fulfillments"][0]["tracking_ids"], json!(["357962501027"]));

    // A cancelled order from the data shows its refund.
    let cancelled = h.order("W3220387").await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        history(&cancelled),
        vec![tx("payment", "608.91", "paypal_5716091"), tx("refund", "608.91", "paypal_5716091")]
    );
    assert_eq!(cancelled["totals"]["refundable"], "0.00");

    h.get_refused("/orders/W0000000", (StatusCode::NOT_FOUND, "order_not_found")).await;
}

#[tokio::test]
async fn shows_products_and_lists_product_types() {
    let h = Harness::start().await;
    let (status, list) = h.get("/products").await;
    assert_eq!(status, StatusCode::OK);
    let types = list["product_types"].as_array().unwrap();
    assert_eq!(types.len(), 50);
    assert_eq!(
        types[0],
        json!({ "product_id": "3377618313", "name": "Action Camera", "variants": 12, "available_variants": 5 })
    );

    let (status, product) = h.get("/products/9523456873").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(product["name"], "T-Shirt");
    assert_eq!(product["currency"], "USD");
    let variant = product["variants"].as_array().unwrap().iter().find(|v| v["item_id"] == "9612497925").unwrap();
    assert_eq!(variant["price"], "50.88");
    assert_eq!(variant["available"], true);
    assert_eq!(variant["options"]["size"], "M");

    h.get_refused("/products/123", (StatusCode::NOT_FOUND, "product_not_found")).await;
}

// ------------------------------------------------------------------ cancel

#[tokio::test]
async fn cancelling_refunds_a_gift_card_at_once() {
    let h = Harness::start().await;
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "78.00");
    let (status, body) = h.post("/orders/W8328622/cancel", json!({ "reason": "ordered by mistake" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let order = &body["order"];
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancel_reason"], "ordered by mistake");
    assert_eq!(
        history(order),
        vec![tx("payment", "335.99", "gift_card_8836799"), tx("refund", "335.99", "gift_card_8836799")]
    );
    assert_eq!(order["totals"]["refundable"], "0.00");
    assert_eq!(
        payment_method(&body["customer"], "gift_card_8836799")["balance"],
        "413.99",
        "the response carries the customer's new gift card balance"
    );
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "413.99");
    assert_eq!(h.order("W8328622").await["status"], "cancelled");
}

#[tokio::test]
async fn cancelling_refunds_a_credit_card() {
    let h = Harness::start().await;
    let (status, body) = h.post("/orders/W4923227/cancel", json!({ "reason": "no longer needed" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "cancelled");
    assert_eq!(
        history(&body["order"]),
        vec![tx("payment", "321.18", "credit_card_8554680"), tx("refund", "321.18", "credit_card_8554680")]
    );
    assert_eq!(body["order"]["payment_history"][1]["reason"], "cancellation");
    // Other methods are untouched.
    assert_eq!(h.balance("isabella_lopez_6490", "gift_card_8245350").await, "60.00");
}

#[tokio::test]
async fn cancel_rules_are_enforced() {
    let h = Harness::start().await;
    let (status, error) = h.post("/orders/W5544629/cancel", json!({ "reason": "no longer needed" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&error), "order_not_pending", "a delivered order cannot be cancelled");
    assert!(error["error"]["message"].as_str().unwrap().contains("delivered"));
    assert_eq!(h.order("W5544629").await["status"], "delivered");

    h.post_refused(
        "/orders/W3220387/cancel",
        json!({ "reason": "no longer needed" }),
        (StatusCode::CONFLICT, "order_not_pending"),
    )
    .await;

    let (status, error) = h.post("/orders/W8328622/cancel", json!({ "reason": "changed my mind" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&error), "invalid_reason");
    assert_eq!(h.order("W8328622").await["status"], "pending");
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "78.00");

    h.post_refused(
        "/orders/W0000000/cancel",
        json!({ "reason": "no longer needed" }),
        (StatusCode::NOT_FOUND, "order_not_found"),
    )
    .await;
}

// ------------------------------------------------------------------ pending order changes

#[tokio::test]
async fn changes_a_pending_orders_shipping_address() {
    let h = Harness::start().await;
    let address = json!({
        "address1": " 1 Loop Road ", "address2": "", "city": "Austin",
        "state": "TX", "country": "USA", "zip": "78701"
    });
    let (status, body) = h.put("/orders/W8328622/shipping-address", address.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["order"]["shipping_address"],
        json!({ "address1": "1 Loop Road", "address2": "", "city": "Austin",
                "state": "TX", "country": "USA", "zip": "78701" })
    );
    assert_eq!(body["order"]["status"], "pending");
    assert_eq!(h.order("W8328622").await["shipping_address"]["city"], "Austin");

    h.put_refused("/orders/W5544629/shipping-address", address, (StatusCode::CONFLICT, "order_not_pending")).await;

    let cases = [
        (
            json!({ "address1": "2 Road", "city": " ", "state": "TX", "country": "USA", "zip": "78701" }),
            "invalid_address",
        ),
        (json!({ "address1": "2 Road" }), "invalid_request"),
    ];
    let path = "/orders/W8328622/shipping-address";
    h.refuses_each(Method::PUT, path, cases.map(|(request, code)| (request, UNPROCESSABLE, code))).await;
    assert_eq!(h.order("W8328622").await["shipping_address"]["address1"], "1 Loop Road");
}

#[tokio::test]
async fn payment_method_change_rules_are_enforced() {
    let h = Harness::start().await;
    let path = "/orders/W4923227/payment-method";
    let cases = [
        ("gift_card_8245350", StatusCode::UNPROCESSABLE_ENTITY, "insufficient_gift_card_balance"),
        ("credit_card_8554680", StatusCode::UNPROCESSABLE_ENTITY, "same_payment_method"),
        ("paypal_5727330", StatusCode::UNPROCESSABLE_ENTITY, "payment_method_not_found"),
    ];
    h.refuses_each(Method::PUT, path, cases.map(|(m, status, code)| (json!({ "payment_method_id": m }), status, code)))
        .await;
    let order = h.order("W4923227").await;
    assert_eq!(history(&order).len(), 1, "refused changes move no money");
    assert_eq!(h.balance("isabella_lopez_6490", "gift_card_8245350").await, "60.00");

    let (status, body) = h.put(path, json!({ "payment_method_id": "paypal_1621947" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        history(&body["order"]),
        vec![
            tx("payment", "321.18", "credit_card_8554680"),
            tx("refund", "321.18", "credit_card_8554680"),
            tx("payment", "321.18", "paypal_1621947")
        ]
    );
    assert_eq!(body["order"]["totals"]["paid"], "642.36");
    assert_eq!(body["order"]["totals"]["refundable"], "321.18");
    assert_eq!(body["order"]["status"], "pending");
    let (status, error) = h.put(path, json!({ "payment_method_id": "credit_card_8554680" })).await;
    assert_eq!((status, code(&error)), (StatusCode::CONFLICT, "payment_already_changed"), "moved once");

    h.put_refused(
        "/orders/W5544629/payment-method",
        json!({ "payment_method_id": "gift_card_7471275" }),
        (StatusCode::CONFLICT, "order_not_pending"),
    )
    .await;
}

#[tokio::test]
async fn paying_with_a_gift_card_spends_it_and_cancelling_gives_it_back() {
    let h = Harness::start().await;
    let (status, body) =
        h.put("/orders/W1080318/payment-method", json!({ "payment_method_id": "gift_card_3749819" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(payment_method(&body["customer"], "gift_card_3749819")["balance"], "37.57", "91.00 - 53.43");
    let (status, body) = h.post("/orders/W1080318/cancel", json!({ "reason": "no longer needed" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        history(&body["order"]),
        vec![
            tx("payment", "53.43", "credit_card_3577130"),
            tx("refund", "53.43", "credit_card_3577130"),
            tx("payment", "53.43", "gift_card_3749819"),
            tx("refund", "53.43", "gift_card_3749819")
        ],
        "only the method that still holds the money is refunded"
    );
    assert_eq!(h.balance("omar_kim_3528", "gift_card_3749819").await, "91.00");
}

#[tokio::test]
async fn modifies_a_pending_orders_items_once() {
    let h = Harness::start().await;
    let path = "/orders/W2307204/item-modifications";
    let swap = |old: &str, new: &str, method: &str| json!({ "items": [{ "item_id": old, "new_item_id": new }], "payment_method_id": method });
    let cases = [
        (swap("9829827210", "1518544029", "paypal_1038468"), "variant_unavailable"),
        (swap("9829827210", "9799386954", "paypal_1038468"), "product_mismatch"),
        (swap("9829827210", "9829827210", "paypal_1038468"), "same_item"),
        (swap("1111111111", "3369928769", "paypal_1038468"), "item_not_in_order"),
        (swap("9829827210", "3369928769", "credit_card_0000000"), "payment_method_not_found"),
        (json!({ "items": [], "payment_method_id": "paypal_1038468" }), "invalid_request"),
    ];
    h.refuses_each(Method::POST, path, cases.map(|(request, code)| (request, UNPROCESSABLE, code))).await;
    assert_eq!(h.order("W2307204").await["status"], "pending");

    // Garden hose 90.43 -> 97.35 (+6.92), notebook 32.37 -> 32.29 (-0.08): +6.84 charged
    // to the gift card (79.00).
    let (status, body) = h
        .post(
            path,
            json!({
                "items": [
                    { "item_id": "9829827210", "new_item_id": "3369928769" },
                    { "item_id": "9421195098", "new_item_id": "1199058591" }
                ],
                "payment_method_id": "gift_card_7777844"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let order = &body["order"];
    assert_eq!(order["status"], "pending (item modified)");
    let items: Vec<(&str, &str)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["item_id"].as_str().unwrap(), i["price"].as_str().unwrap()))
        .collect();
    assert!(items.contains(&("3369928769", "97.35")), "{items:?}");
    assert!(items.contains(&("1199058591", "32.29")), "{items:?}");
    assert_eq!(
        history(order),
        vec![tx("payment", "122.80", "paypal_1038468"), tx("payment", "6.84", "gift_card_7777844")]
    );
    assert_eq!(order["totals"]["items_total"], "129.64");
    assert_eq!(order["totals"]["paid"], "129.64");
    assert_eq!(payment_method(&body["customer"], "gift_card_7777844")["balance"], "72.16");

    let (status, error) = h.post(path, swap("3369928769", "5206946487", "paypal_1038468")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&error), "items_already_modified", "items can be modified only once");
    assert_eq!(h.balance("emma_kovacs_7176", "gift_card_7777844").await, "72.16");

    // After its items were modified, the order can no longer be cancelled.
    h.post_refused(
        "/orders/W2307204/cancel",
        json!({ "reason": "no longer needed" }),
        (StatusCode::CONFLICT, "order_not_pending"),
    )
    .await;
    assert_eq!(h.balance("emma_kovacs_7176", "gift_card_7777844").await, "72.16");
}

#[tokio::test]
async fn item_modification_settles_the_price_difference_with_a_gift_card() {
    let h = Harness::start().await;
    // Tablet 903.95 -> 1054.43 is a 150.48 rise; the gift card holds 36.00.
    let upgrade = json!({
        "items": [{ "item_id": "2106335193", "new_item_id": "2235648106" }],
        "payment_method_id": "gift_card_6023546"
    });
    let (status, error) = h.post("/orders/W2918688/item-modifications", upgrade).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&error), "insufficient_gift_card_balance");
    assert_eq!(h.order("W2918688").await["status"], "pending");
    assert_eq!(h.balance("emma_santos_9753", "gift_card_6023546").await, "36.00");

    // Smart watch 356.23 -> 315.61: the 40.62 drop goes back to the gift card (34.00).
    let (status, body) = h
        .post(
            "/orders/W2087737/item-modifications",
            json!({
                "items": [{ "item_id": "2681513500", "new_item_id": "2860956907" }],
                "payment_method_id": "gift_card_7037673"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        history(&body["order"]),
        vec![tx("payment", "1617.37", "paypal_3392566"), tx("refund", "40.62", "gift_card_7037673")]
    );
    assert_eq!(body["order"]["totals"]["refundable"], "1576.75");
    assert_eq!(payment_method(&body["customer"], "gift_card_7037673")["balance"], "74.62");
}

// ------------------------------------------------------------------ delivered orders

#[tokio::test]
async fn returns_delivered_items_to_the_original_method_or_a_gift_card() {
    let h = Harness::start().await;
    let path = "/orders/W5544629/returns";
    let cases = [
        (
            json!({ "item_ids": ["1583904702"], "payment_method_id": "credit_card_2641784" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "refund_method_not_allowed",
        ),
        (
            json!({ "item_ids": ["1583904702", "1583904702"], "payment_method_id": "paypal_5181300" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "item_not_in_order",
        ),
        (
            json!({ "item_ids": [], "payment_method_id": "paypal_5181300" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({ "item_ids": ["1583904702"], "payment_method_id": "gift_card_0000000" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "payment_method_not_found",
        ),
    ];
    h.refuses_each(Method::POST, path, cases).await;
    let (status, body) =
        h.post(path, json!({ "item_ids": ["1583904702"], "payment_method_id": "paypal_5181300" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "return requested");
    assert_eq!(
        body["order"]["return_request"],
        json!({ "item_ids": ["1583904702"], "refund_payment_method_id": "paypal_5181300",
                "refund_amount": "195.84", "currency": "USD" })
    );
    h.post_refused(
        path,
        json!({ "item_ids": ["6735339143"], "payment_method_id": "paypal_5181300" }),
        (StatusCode::CONFLICT, "order_not_delivered"),
    )
    .await;

    // A gift card of the customer is also allowed.
    let (status, body) = h
        .post(
            "/orders/W5866402/returns",
            json!({ "item_ids": ["9727387530", "6242772310"], "payment_method_id": "gift_card_7794233" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["return_request"]["refund_amount"], "3203.78");

    let (status, error) = h
        .post(
            "/orders/W8328622/returns",
            json!({ "item_ids": ["9192177173"], "payment_method_id": "gift_card_8836799" }),
        )
        .await;
    assert_eq!(
        (status, code(&error)),
        (StatusCode::CONFLICT, "order_not_delivered"),
        "a pending order cannot be returned"
    );
}

#[tokio::test]
async fn exchanges_delivered_items_for_available_variants() {
    let h = Harness::start().await;
    let path = "/orders/W5866402/exchanges";
    // Espresso machine 2996.03 -> 3289.46: +293.43, more than the 56.00 gift card.
    let upgrade = |method: &str| {
        json!({ "items": [{ "item_id": "6242772310", "new_item_id": "3951031513" }],
                "payment_method_id": method })
    };
    h.post_refused(
        path,
        upgrade("gift_card_7794233"),
        (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_gift_card_balance"),
    )
    .await;
    h.post_refused(
        path,
        json!({ "items": [{ "item_id": "9727387530", "new_item_id": "4410138384" }],
                    "payment_method_id": "paypal_8049766" }),
        (StatusCode::UNPROCESSABLE_ENTITY, "variant_unavailable"),
    )
    .await;
    assert_eq!(h.order("W5866402").await["status"], "delivered");

    let (status, body) = h.post(path, upgrade("paypal_8049766")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "exchange requested");
    assert_eq!(
        body["order"]["exchange_request"],
        json!({ "items": [{ "item_id": "6242772310", "new_item_id": "3951031513" }],
                "payment_method_id": "paypal_8049766", "price_difference": "293.43",
                "currency": "USD" })
    );
    assert_eq!(history(&body["order"]).len(), 1, "settled when the exchange is processed");

    h.post_refused(path, upgrade("paypal_8049766"), (StatusCode::CONFLICT, "order_not_delivered")).await;
    h.post_refused(
        "/orders/W2307204/exchanges",
        json!({ "items": [{ "item_id": "9829827210", "new_item_id": "3369928769" }],
                    "payment_method_id": "paypal_1038468" }),
        (StatusCode::CONFLICT, "order_not_delivered"),
    )
    .await;
}

#[tokio::test]
async fn partial_refunds_never_exceed_what_is_refundable() {
    let h = Harness::start().await;
    let path = "/orders/W2598834/refunds";
    // Jigsaw puzzle, 46.00 paid with a gift card holding 59.00.
    let (status, body) =
        h.post(path, json!({ "amount": "10.50", "currency": "USD", "reason": "box arrived dented" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "delivered");
    assert_eq!(
        history(&body["order"]),
        vec![tx("payment", "46.00", "gift_card_7250692"), tx("refund", "10.50", "gift_card_7250692")]
    );
    assert_eq!(body["order"]["payment_history"][1]["reason"], "partial refund: box arrived dented");
    assert_eq!(body["order"]["totals"]["refunded"], "10.50");
    assert_eq!(body["order"]["totals"]["refundable"], "35.50");
    assert_eq!(
        payment_method(&body["customer"], "gift_card_7250692")["balance"],
        "69.50",
        "a gift card refund is credited at once"
    );

    let cases = [
        (json!({ "amount": "35.51", "currency": "USD" }), "refund_exceeds_refundable"),
        (json!({ "amount": "5.00", "currency": "EUR" }), "unsupported_currency"),
        (json!({ "amount": "0.00", "currency": "USD" }), "invalid_amount"),
        (json!({ "amount": "-1", "currency": "USD" }), "invalid_amount"),
        (json!({ "amount": "1.005", "currency": "USD" }), "invalid_amount"),
        (json!({ "amount": "ten", "currency": "USD" }), "invalid_amount"),
        (json!({ "amount": true, "currency": "USD" }), "invalid_amount"),
        (json!({ "amount": "5.00" }), "invalid_request"),
    ];
    h.refuses_each(Method::POST, path, cases.map(|(request, code)| (request, UNPROCESSABLE, code))).await;
    let (status, error) = h.post(path, json!({ "amount": "35.51", "currency": "USD" })).await;
    assert!(
        error["error"]["message"].as_str().unwrap().contains("35.50"),
        "the message says what is refundable: {error} {status}"
    );

    // A JSON number is read digit for digit, never through a float.
    let (status, body, _) = h
        .request(Method::POST, path, Some(r#"{"amount": 35.5, "currency": "USD"}"#.to_owned()), None, Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["totals"]["refunded"], "46.00");
    assert_eq!(body["order"]["totals"]["refundable"], "0.00");
    assert_eq!(h.balance("chen_silva_7485", "gift_card_7250692").await, "105.00");
    h.post_refused(
        path,
        json!({ "amount": "0.01", "currency": "USD" }),
        (StatusCode::UNPROCESSABLE_ENTITY, "refund_exceeds_refundable"),
    )
    .await;

    h.post_refused(
        "/orders/W8328622/refunds",
        json!({ "amount": "1.00", "currency": "USD" }),
        (StatusCode::CONFLICT, "order_not_delivered"),
    )
    .await;
}

// ------------------------------------------------------------------ customer changes

#[tokio::test]
async fn changes_a_customers_default_address() {
    let h = Harness::start().await;
    let (status, body) = h
        .put(
            "/customers/noah_brown_6181/default-address",
            json!({ "address1": "5 Elm Street", "city": "Boulder", "state": "CO",
                    "country": "USA", "zip": "80301" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["customer"]["default_address"],
        json!({ "address1": "5 Elm Street", "address2": "", "city": "Boulder", "state": "CO",
                "country": "USA", "zip": "80301" })
    );
    let (status, found) = h.get("/customers/lookup?first_name=Noah&last_name=Brown&zip=80301").await;
    assert_eq!(status, StatusCode::OK, "the new zip is searchable");
    assert_eq!(found["customer_id"], "noah_brown_6181");

    h.put_refused(
        "/customers/noah_brown_6181/default-address",
        json!({ "address1": "", "city": "Boulder", "state": "CO", "country": "USA", "zip": "80301" }),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_address"),
    )
    .await;
    h.put_refused(
        "/customers/nobody_0000/default-address",
        json!({ "address1": "1 A St", "city": "B", "state": "CO", "country": "USA", "zip": "1" }),
        (StatusCode::NOT_FOUND, "customer_not_found"),
    )
    .await;
}

#[tokio::test]
async fn changes_a_customers_email_when_valid_and_unused() {
    let h = Harness::start().await;
    let path = "/customers/noah_brown_6181/email";
    let cases = [
        ("james.li4495@example.com", StatusCode::CONFLICT, "email_in_use"),
        ("JAMES.LI4495@example.com", StatusCode::CONFLICT, "email_in_use"),
        ("not-an-email", StatusCode::UNPROCESSABLE_ENTITY, "invalid_email"),
        ("a b@example.com", StatusCode::UNPROCESSABLE_ENTITY, "invalid_email"),
        ("noah@localhost", StatusCode::UNPROCESSABLE_ENTITY, "invalid_email"),
    ];
    h.refuses_each(Method::PUT, path, cases.map(|(email, status, code)| (json!({ "email": email }), status, code)))
        .await;
    let (status, body) = h.put(path, json!({ "email": "noah.b@example.org" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customer"]["email"], "noah.b@example.org");
    let (status, found) = h.get("/customers/lookup?email=noah.b@example.org").await;
    assert_eq!((status, &found["customer_id"]), (StatusCode::OK, &json!("noah_brown_6181")));
    let (status, _) = h.get("/customers/lookup?email=noah.brown7922@example.com").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the old email no longer finds anyone");
    // Keeping one's own email is not a conflict.
    let (status, _) = h.put(path, json!({ "email": "Noah.B@example.org" })).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn creates_a_goodwill_coupon() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/customers/mia_moore_8366/coupons",
            json!({ "amount": "15.00", "currency": "USD", "reason": "late delivery" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let coupon = &body["coupon"];
    let code_text = coupon["code"].as_str().unwrap();
    assert!(code_text.starts_with("GW-") && code_text.len() == 13, "{code_text}");
    assert_eq!(coupon["amount"], "15.00");
    assert_eq!(coupon["currency"], "USD");
    assert_eq!(coupon["reason"], "late delivery");
    assert_eq!(coupon["customer_id"], "mia_moore_8366");
    assert_eq!(body["customer"]["coupons"], json!([coupon]));
    assert_eq!(h.customer("mia_moore_8366").await["coupons"], json!([coupon]));

    let cases = [
        (json!({ "amount": "15.00", "currency": "EUR", "reason": "x" }), "unsupported_currency"),
        (json!({ "amount": "0", "reason": "x" }), "invalid_amount"),
        (json!({ "amount": "5", "reason": "  " }), "invalid_request"),
        (json!({ "amount": "5" }), "invalid_request"),
    ];
    let coupons = "/customers/mia_moore_8366/coupons";
    h.refuses_each(Method::POST, coupons, cases.map(|(request, code)| (request, UNPROCESSABLE, code))).await;
    h.post_refused(
        "/customers/nobody_0000/coupons",
        json!({ "amount": "5", "reason": "x" }),
        (StatusCode::NOT_FOUND, "customer_not_found"),
    )
    .await;
    assert_eq!(h.customer("mia_moore_8366").await["coupons"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn records_a_password_reset_without_secrets() {
    let h = Harness::start().await;
    let (status, body, _) =
        h.request(Method::POST, "/customers/chen_silva_7485/password-resets", None, Some("reset-1"), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reset = &body["password_reset"];
    let fields: Vec<&str> = reset.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, ["created_at", "customer_id", "reference", "sent_to"], "no token or link");
    assert!(reset["reference"].as_str().unwrap().starts_with("PR-"));
    assert_eq!(reset["sent_to"], "chen.silva2698@example.com");
    assert_eq!(h.customer("chen_silva_7485").await["password_resets"], json!([reset]));

    let (status, body) = h.post("/customers/chen_silva_7485/password-resets", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(h.customer("chen_silva_7485").await["password_resets"].as_array().unwrap().len(), 2);
    h.post_refused(
        "/customers/chen_silva_7485/password-resets",
        json!({ "send_to": "x@evil.example" }),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
    )
    .await;
}

// ------------------------------------------------------------------ idempotency

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_result_and_changes_state_once() {
    let h = Harness::start().await;
    let cancel = json!({ "reason": "no longer needed" });
    let (first_status, first, replayed) =
        h.post_with_key("/orders/W8328622/cancel", cancel.clone(), "cancel-W8328622").await;
    assert_eq!(first_status, StatusCode::OK);
    assert!(!replayed);
    let (status, again, replayed) = h.post_with_key("/orders/W8328622/cancel", cancel.clone(), "cancel-W8328622").await;
    assert_eq!(status, StatusCode::OK, "a replay is not a 409 although the order is now cancelled");
    assert!(replayed, "a replay is marked");
    assert_eq!(again, first, "same body");
    assert_eq!(history(&h.order("W8328622").await).len(), 2, "one refund, not two");
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "413.99");

    // The same key with a different request is refused and changes nothing.
    let (status, error, _) =
        h.post_with_key("/orders/W8328622/cancel", json!({ "reason": "ordered by mistake" }), "cancel-W8328622").await;
    assert_eq!((status, code(&error)), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));
    let (status, error, _) = h.post_with_key("/orders/W4923227/cancel", cancel.clone(), "cancel-W8328622").await;
    assert_eq!((status, code(&error)), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));
    assert_eq!(h.order("W4923227").await["status"], "pending");

    // A refused write is remembered too: the retry gets the same refusal.
    let refund = json!({ "amount": "46.01", "currency": "USD" });
    let (status, first, _) = h.post_with_key("/orders/W2598834/refunds", refund.clone(), "r-1").await;
    assert_eq!((status, code(&first)), (StatusCode::UNPROCESSABLE_ENTITY, "refund_exceeds_refundable"));
    let (status, again, replayed) = h.post_with_key("/orders/W2598834/refunds", refund, "r-1").await;
    assert_eq!((status, replayed), (StatusCode::UNPROCESSABLE_ENTITY, true));
    assert_eq!(again, first);

    // Creating things: the same coupon comes back, not a second one.
    let coupon = json!({ "amount": "5.00", "reason": "sorry" });
    let (status, first, _) = h.post_with_key("/customers/mia_moore_8366/coupons", coupon.clone(), "c-1").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again, _) = h.post_with_key("/customers/mia_moore_8366/coupons", coupon, "c-1").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["coupon"]["code"], first["coupon"]["code"]);
    assert_eq!(h.customer("mia_moore_8366").await["coupons"].as_array().unwrap().len(), 1);

    let (status, error, _) = h.post_with_key("/orders/W8328622/cancel", cancel, &"k".repeat(256)).await;
    assert_eq!((status, code(&error)), (StatusCode::BAD_REQUEST, "invalid_idempotency_key"));
}

#[tokio::test]
async fn concurrent_retries_with_one_key_apply_once() {
    let h = std::sync::Arc::new(Harness::start().await);
    let refund = json!({ "amount": "10.00", "currency": "USD", "reason": "goodwill" });
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let h = std::sync::Arc::clone(&h);
        let refund = refund.clone();
        tasks.push(tokio::spawn(
            async move { h.post_with_key("/orders/W2598834/refunds", refund, "refund-once").await },
        ));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        let (status, body, _) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every retry sees the first result");
    let order = h.order("W2598834").await;
    assert_eq!(order["totals"]["refunded"], "10.00", "refunded once");
    assert_eq!(h.balance("chen_silva_7485", "gift_card_7250692").await, "69.00");
}

// ------------------------------------------------------------------ persistence

#[tokio::test]
async fn state_survives_a_restart() {
    let h = Harness::start().await;
    let (status, first, _) =
        h.post_with_key("/orders/W8328622/cancel", json!({ "reason": "no longer needed" }), "persist-1").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.put("/customers/noah_brown_6181/email", json!({ "email": "noah@example.net" })).await;
    assert_eq!(status, StatusCode::OK);

    let h = h.restart().await;
    let order = h.order("W8328622").await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancel_reason"], "no longer needed");
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "413.99");
    assert_eq!(h.customer("noah_brown_6181").await["email"], "noah@example.net");
    let (status, again, replayed) =
        h.post_with_key("/orders/W8328622/cancel", json!({ "reason": "no longer needed" }), "persist-1").await;
    assert_eq!((status, replayed), (StatusCode::OK, true), "keys survive a restart");
    assert_eq!(again, first);
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "413.99");
    h.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- the seller center's web pages

/// A browser-like client: keeps the session cookie by hand and never follows redirects,
/// so each test sees exactly where the store sends it.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new(h: &Harness) -> Browser {
        let client = countersign_http::client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { base: h.base.clone(), client, cookie: None }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> (StatusCode, String, String) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        if let Some(form) = form {
            let body: Vec<String> = form
                .iter()
                .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace(' ', "+").replace('#', "%23")))
                .collect();
            request = request.header("Content-Type", "application/x-www-form-urlencoded").body(body.join("&"));
        }
        let response = request.send().await.unwrap();
        if let Some(set) = response.headers().get("set-cookie") {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        let status = response.status();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, location, response.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, String) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        self.send(Method::POST, path, Some(form)).await
    }

    async fn login(&mut self) {
        let (status, location, _) =
            self.post("/seller/login", &[("user", "agent"), ("password", TOKEN), ("next", "/seller/home")]).await;
        assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/seller/home"));
        assert!(self.cookie.as_deref().unwrap().starts_with("cs_session="));
    }

    /// The CSRF token of the form on `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let (status, _, html) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let at = html.find("name=\"csrf_token\" value=\"").expect("a form with a CSRF token") + 25;
        html[at..at + 32].to_owned()
    }
}

/// The value of the hidden `name` field inside the form `form_id` of `html`.
fn hidden_field(html: &str, form_id: &str, name: &str) -> String {
    let form = &html[html.find(&format!("<form id=\"{form_id}\"")).unwrap_or_else(|| panic!("no {form_id}: {html}"))..];
    let marker = format!("name=\"{name}\" value=\"");
    let at = form.find(&marker).unwrap() + marker.len();
    form[at..at + form[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn pages_need_a_session_and_the_login_takes_the_store_password() {
    let h = Harness::start().await;
    let mut b = Browser::new(&h);
    let (status, location, _) = b.get("/seller/orders/W5918442").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no session: to the login page");
    assert_eq!(location, "/seller/login?next=/seller/orders/W5918442");
    let (status, _, html) = b.get("/seller/login?next=/seller/orders/W5918442").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<form id=\"login\""), "{html}");

    let (status, _, html) = b.post("/seller/login", &[("user", "agent"), ("password", "wrong")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    assert!(b.cookie.is_none(), "a wrong password opens no session");
    let (_, location, _) = b.post("/seller/login", &[("user", "agent"), ("password", "x"), ("next", "//evil")]).await;
    assert_eq!(location, "", "still refused");

    b.login().await;
    let (status, _, html) = b.get("/seller/orders/W5918442").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<dd id=\"order-status\">pending</dd>"), "{html}");
    assert!(html.contains("<dd id=\"order-customer\">sofia_rossi_8776</dd>"), "{html}");
    assert!(html.contains("<dd id=\"order-refunded\">0.00</dd>"), "{html}");
    let api = h.order("%23W5918442").await;
    assert!(html.contains(&format!("<dd id=\"order-paid\">{}</dd>", api["totals"]["paid"].as_str().unwrap())));

    // The API token is still needed for the JSON API; a session cookie is not a token.
    let (status, _, _) = h.request(Method::GET, "/orders/%23W5918442", None, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_cancel_form_applies_the_api_rules_and_confirms() {
    let h = Harness::start().await;
    let mut b = Browser::new(&h);
    b.login().await;
    let csrf = b.csrf("/seller/orders/W5918442/cancel").await;

    let (status, _, html) =
        b.post("/seller/orders/W5918442/cancel", &[("csrf_token", "0"), ("reason", "no longer needed")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a wrong CSRF token changes nothing: {html}");
    let (status, _, html) =
        b.post("/seller/orders/W5918442/cancel", &[("csrf_token", &csrf), ("reason", "too pricey")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("<p id=\"error-code\">invalid_reason</p>"), "the API's own rule: {html}");
    assert_eq!(h.order("%23W5918442").await["status"], "pending");

    let (status, _, html) =
        b.post("/seller/orders/W5918442/cancel", &[("csrf_token", &csrf), ("reason", "ordered by mistake")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<main id=\"confirmation\" data-replayed=\"false\">"), "{html}");
    assert!(html.contains("<dd id=\"order-status\">cancelled</dd>"), "{html}");
    let order = h.order("%23W5918442").await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["totals"]["refunded"], order["totals"]["paid"], "refunded like the API's cancel");

    let (status, _, html) =
        b.post("/seller/orders/W5918442/cancel", &[("csrf_token", &csrf), ("reason", "ordered by mistake")]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("order_not_pending"), "{html}");
}

#[tokio::test]
async fn refund_and_address_forms_change_the_order() {
    let h = Harness::start().await;
    let mut b = Browser::new(&h);
    b.login().await;
    let csrf = b.csrf("/seller/orders/W4817420/refund").await;
    let (status, _, html) = b
        .post("/seller/orders/W4817420/refund", &[("csrf_token", &csrf), ("amount", "10.5"), ("reason", "late")])
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(h.order("%23W4817420").await["totals"]["refunded"], "10.50");
    let (status, _, html) =
        b.post("/seller/orders/W4817420/refund", &[("csrf_token", &csrf), ("amount", "1e3"), ("reason", "")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "amounts are decimals, as in the API: {html}");

    let csrf = b.csrf("/seller/orders/W5918442/address").await;
    let form = springfield_form(&csrf);
    let (status, _, html) = b.post("/seller/orders/W5918442/address", &form).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(h.order("%23W5918442").await["shipping_address"]["city"], "Springfield");
}

/// The order forms' `form_token` is the store's idempotency key for the form, exactly as
/// the API's `Idempotency-Key`: what a retried browser submit relies on.
#[tokio::test]
async fn an_order_form_posted_again_with_its_token_applies_once_and_answers_the_same_page() {
    let h = Harness::start().await;
    let mut b = Browser::new(&h);
    b.login().await;
    let (_, _, html) = b.get("/seller/orders/W4817420/refund").await;
    let csrf = hidden_field(&html, "refund-form", "csrf_token");
    let token = hidden_field(&html, "refund-form", "form_token");
    assert!(token.len() == 32 && token.bytes().all(|c| c.is_ascii_hexdigit()), "a server-issued nonce: {token}");
    let (_, _, again) = b.get("/seller/orders/W4817420/refund").await;
    assert_ne!(hidden_field(&again, "refund-form", "form_token"), token, "a fresh nonce each time the form opens");

    // The client's own key in the token field: the same form posted twice refunds once.
    let refund =
        [("csrf_token", csrf.as_str()), ("form_token", "cs-step-key-1"), ("amount", "10.50"), ("reason", "late")];
    let (status, _, first) = b.post("/seller/orders/W4817420/refund", &refund).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(first.contains("<main id=\"confirmation\" data-replayed=\"false\">"), "{first}");
    assert!(first.contains("<dd id=\"order-refunded\">10.50</dd>"), "{first}");
    let (status, _, second) = b.post("/seller/orders/W4817420/refund", &refund).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(
        second.replace("data-replayed=\"true\"", "data-replayed=\"false\""),
        first,
        "a replay answers the first result page, marked as a replay"
    );
    assert_eq!(h.order("%23W4817420").await["totals"]["refunded"], "10.50", "refunded once");

    // From a new session (a new CSRF token) it is still the same request.
    let mut other = Browser::new(&h);
    other.login().await;
    let csrf2 = other.csrf("/seller/orders/W4817420/refund").await;
    let same =
        [("csrf_token", csrf2.as_str()), ("form_token", "cs-step-key-1"), ("amount", "10.50"), ("reason", "late")];
    let (status, _, html) = other.post("/seller/orders/W4817420/refund", &same).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-replayed=\"true\""), "{html}");
    assert_eq!(h.order("%23W4817420").await["totals"]["refunded"], "10.50");

    // Another request under the same token is refused and changes nothing: other fields,
    // another form, another order.
    let more = [("csrf_token", csrf.as_str()), ("form_token", "cs-step-key-1"), ("amount", "5.00"), ("reason", "late")];
    let (status, _, html) = b.post("/seller/orders/W4817420/refund", &more).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("<p id=\"error-code\">idempotency_key_reused</p>"), "{html}");
    let cancel = [("csrf_token", csrf.as_str()), ("form_token", "cs-step-key-1"), ("reason", "no longer needed")];
    let (status, _, html) = b.post("/seller/orders/W8328622/cancel", &cancel).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("idempotency_key_reused"), "{html}");
    assert_eq!(h.order("%23W8328622").await["status"], "pending");
    assert_eq!(h.order("%23W4817420").await["totals"]["refunded"], "10.50");

    // A form token is not an API key: the same text as an Idempotency-Key is another key.
    let (status, body, replayed) = h
        .post_with_key("/orders/W4817420/refunds", json!({ "amount": "1.00", "currency": "USD" }), "cs-step-key-1")
        .await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{body}");
    assert_eq!(h.order("%23W4817420").await["totals"]["refunded"], "11.50");

    // Without a token (or with an empty one) a form is applied each time, as before.
    let bare = [("csrf_token", csrf.as_str()), ("amount", "1.00"), ("reason", "")];
    for _ in 0..2 {
        let (status, _, html) = b.post("/seller/orders/W4817420/refund", &bare).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("data-replayed=\"false\""), "{html}");
    }
    let empty = [("csrf_token", csrf.as_str()), ("form_token", ""), ("amount", "1.00"), ("reason", "")];
    let (status, _, html) = b.post("/seller/orders/W4817420/refund", &empty).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(h.order("%23W4817420").await["totals"]["refunded"], "14.50", "three refunds without a token");
    let bad = [("csrf_token", csrf.as_str()), ("form_token", "not a key"), ("amount", "1.00"), ("reason", "")];
    let (status, _, html) = b.post("/seller/orders/W4817420/refund", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("invalid_idempotency_key"), "{html}");
    assert_eq!(h.order("%23W4817420").await["totals"]["refunded"], "14.50");

    // A cancel posted twice with its token cancels (and refunds) once; the second answer
    // is the first confirmation, not a 409.
    let (_, _, html) = b.get("/seller/orders/W8328622/cancel").await;
    let token = hidden_field(&html, "cancel-form", "form_token");
    let cancel = [("csrf_token", csrf.as_str()), ("form_token", token.as_str()), ("reason", "no longer needed")];
    let (status, _, first) = b.post("/seller/orders/W8328622/cancel", &cancel).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, _, second) = b.post("/seller/orders/W8328622/cancel", &cancel).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert!(second.contains("data-replayed=\"true\"") && second.contains("<dd id=\"order-status\">cancelled</dd>"));
    assert_eq!(history(&h.order("W8328622").await).len(), 2, "one refund, not two");
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "413.99");

    // A refusal is kept under its token too: the retry gets the same refusal.
    let (_, _, html) = b.get("/seller/orders/W5918442/cancel").await;
    let token = hidden_field(&html, "cancel-form", "form_token");
    let wrong = [("csrf_token", csrf.as_str()), ("form_token", token.as_str()), ("reason", "too pricey")];
    let (status, _, first) = b.post("/seller/orders/W5918442/cancel", &wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{first}");
    let (status, _, second) = b.post("/seller/orders/W5918442/cancel", &wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{second}");
    assert!(second.contains("<main id=\"refused\" data-replayed=\"true\">"), "{second}");
    assert!(second.contains("invalid_reason"), "{second}");
}

#[tokio::test]
async fn verification_interstitial_and_changed_layout_are_switches() {
    let h = Harness::start().await;
    let mut b = Browser::new(&h);
    b.login().await;
    let csrf = b.csrf("/seller/orders/W5918442/cancel").await;

    let (status, settings) = h.put("/seller-center/settings", json!({"verify_sensitive": true})).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    let (status, location, _) = b.get("/seller/orders/W5918442/cancel").await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/seller/verify?next=/seller/orders/W5918442/cancel")
    );
    let (status, location, _) =
        b.post("/seller/orders/W5918442/cancel", &[("csrf_token", &csrf), ("reason", "ordered by mistake")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a post is not applied either");
    assert!(location.starts_with("/seller/verify"), "{location}");
    assert_eq!(h.order("%23W5918442").await["status"], "pending");
    let (_, _, html) = b.get("/seller/verify?next=/seller/orders/W5918442/cancel").await;
    assert!(html.contains("Verify it's you") && html.contains("one-time-code"), "{html}");
    let (_, location, _) =
        b.post("/seller/verify", &[("csrf_token", &csrf), ("code", "not-it"), ("next", "/seller/home")]).await;
    assert!(location.starts_with("/seller/verify"), "a wrong code verifies nothing: {location}");
    let (status, _, _) = b.get("/seller/orders/W5918442").await;
    assert_eq!(status, StatusCode::OK, "reading the order needs no verification");

    let (_, settings) = h.put("/seller-center/settings", json!({"verify_sensitive": false, "layout": "changed"})).await;
    assert_eq!(
        settings,
        json!({
            "verify_sensitive": false, "verify_all": false, "layout": "changed", "dialog": "none", "dialog_on": "open",
            "slow_submits": 0, "slow_ms": 0,
        })
    );
    let (_, _, html) = b.get("/seller/orders/W5918442/cancel").await;
    assert!(html.contains("id=\"cancellation-request\"") && !html.contains("cancel-form"), "{html}");
    assert!(!html.contains("<script"), "no script unless a dialog is switched on: {html}");
    h.put("/seller-center/settings", json!({"layout": "standard"})).await;

    // A JavaScript dialog on the forms, at the moment asked for.
    for (dialog, on, says) in [
        ("alert", "open", "alert(M);"),
        ("prompt", "fill", "addEventListener('change', () => { prompt(M, ''); }"),
        ("confirm", "submit", "if (!confirm(M)) e.preventDefault();"),
    ] {
        h.put("/seller-center/settings", json!({"dialog": dialog, "dialog_on": on})).await;
        let (status, _, html) = b.get("/seller/orders/W5918442/cancel").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(says) && html.contains("id=\"cancel-form\""), "{dialog} on {on}: {html}");
        let (_, _, order) = b.get("/seller/orders/W5918442").await;
        assert!(!order.contains("<script"), "only the forms open dialogs: {order}");
    }
    h.put("/seller-center/settings", json!({"dialog": "none"})).await;
    let (_, _, html) = b.get("/seller/orders/W5918442/cancel").await;
    assert!(!html.contains("<script"), "{html}");

    // Verification on every page: the order page asks too, the verification page does not loop.
    h.put("/seller-center/settings", json!({"verify_all": true})).await;
    let (status, location, _) = b.get("/seller/orders/W5918442").await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/seller/verify?next=/seller/orders/W5918442"));
    let (status, _, html) = b.get("/seller/verify?next=/seller/orders/W5918442").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    h.put("/seller-center/settings", json!({"verify_all": false})).await;

    let (status, body) = h.put("/seller-center/settings", json!({"layout": "sideways"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, _) = h.request(Method::PUT, "/seller-center/settings", Some("{}".into()), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the switches need the API token");

    h.put("/seller-center/settings", json!({"end_sessions": true})).await;
    let (status, location, _) = b.get("/seller/orders/W5918442").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "an ended session is back at the login");
    assert!(location.starts_with("/seller/login"), "{location}");
}
