//! The tau-retail rules, one test per rule, over real HTTP (and the seller center's pages
//! where they offer the form). The rule ids and where each is enforced are listed in
//! `src/rules.rs`; each test here is named `rule_<id>`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Browser, Harness, code, history, payment_method, springfield_form, tx};

// Orders of the seed data, by status, with what the tests use of them.
/// Pending, 122.80 by `paypal_1038468`; emma_kovacs_7176 also has `gift_card_7777844` (79.00).
const PENDING: &str = "W2307204";
/// Pending, 335.99 by `gift_card_8836799` (ava_smith_1453, balance 78.00).
const PENDING_GIFT: &str = "W8328622";
/// Pending, 321.18 by `credit_card_8554680` (isabella_lopez_6490).
const PENDING_CARD: &str = "W4923227";
const PROCESSED: &str = "W2611340";
const CANCELLED: &str = "W3220387";
/// Delivered, 667.61 by `paypal_5181300` (mia_moore_8366).
const DELIVERED: &str = "W5544629";
/// Delivered, 3203.78 by `paypal_8049766` (olivia_ito_3591, `gift_card_7794233` 56.00).
const DELIVERED_2: &str = "W5866402";

fn swap(old: &str, new: &str, method: &str) -> Value {
    json!({ "items": [{ "item_id": old, "new_item_id": new }], "payment_method_id": method })
}

fn address() -> Value {
    json!({ "address1": "1 Loop Road", "city": "Austin", "state": "TX", "country": "USA", "zip": "78701" })
}

impl Harness {
    async fn status_of(&self, order: &str) -> String {
        self.order(order).await["status"].as_str().unwrap().to_owned()
    }

    /// Sends `request` and asserts a refusal, and that the order is as it was before the
    /// request (status, money, items, address).
    async fn refused(
        &self,
        request: impl std::future::Future<Output = (StatusCode, Value)>,
        order: &str,
        expected: (StatusCode, &str),
        why: &str,
    ) {
        let before = self.order(order).await;
        let what = request.await;
        self.refused_since(before, what, order, expected, why).await;
    }

    /// Asserts a refusal `what`, and that `order` is still `before` (read before the
    /// request was sent).
    async fn refused_since(
        &self,
        before: Value,
        what: (StatusCode, Value),
        order: &str,
        expected: (StatusCode, &str),
        why: &str,
    ) {
        let (status, error) = what;
        assert_eq!((status, code(&error)), expected, "{why}: {error}");
        assert_eq!(self.order(order).await, before, "{why}: a refused change changes nothing");
    }

    /// A modification of `PENDING`'s items asked with `body` must be refused with 422
    /// `expected` (`why` says what the case is).
    async fn items_refused(&self, body: Value, expected: &str, why: &str) {
        self.refused(
            self.post(&format!("/orders/{PENDING}/item-modifications"), body),
            PENDING,
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            why,
        )
        .await;
    }

    /// A move of `PENDING_CARD`'s payment to `method` must be refused with `expected`.
    async fn payment_refused(&self, method: &str, expected: (StatusCode, &str), why: &str) {
        self.refused(
            self.put(&format!("/orders/{PENDING_CARD}/payment-method"), json!({ "payment_method_id": method })),
            PENDING_CARD,
            expected,
            why,
        )
        .await;
    }

    /// `body` posted to `/orders/{order}/{operation}` must be refused as `order_not_delivered`
    /// for each of `orders`.
    async fn refused_unless_delivered(&self, orders: &[&str], operation: &str, body: Value) {
        for order in orders {
            let status = self.status_of(order).await;
            self.refused(
                self.post(&format!("/orders/{order}/{operation}"), body.clone()),
                order,
                (StatusCode::CONFLICT, "order_not_delivered"),
                &format!("a {status} order"),
            )
            .await;
        }
    }

    /// `PENDING`'s garden hose replaced by another variant: the order is then
    /// `pending (item modified)`.
    async fn modify_pending(&self) {
        let (status, body) = self
            .post(&format!("/orders/{PENDING}/item-modifications"), swap("9829827210", "3369928769", "paypal_1038468"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["order"]["status"], "pending (item modified)");
    }

    /// `DELIVERED` with a return requested, `DELIVERED_2` with an exchange requested.
    async fn request_return_and_exchange(&self) {
        let (status, body) = self
            .post(
                &format!("/orders/{DELIVERED}/returns"),
                json!({ "item_ids": ["1583904702"], "payment_method_id": "paypal_5181300" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self
            .post(&format!("/orders/{DELIVERED_2}/exchanges"), swap("6242772310", "3951031513", "paypal_8049766"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn cancel(&self, order: &str, reason: &str) -> (StatusCode, Value) {
        self.post(&format!("/orders/{order}/cancel"), json!({ "reason": reason })).await
    }
}

// ------------------------------------------------------------------ cancel

#[tokio::test]
async fn rule_cancel_pending_only() {
    let h = Harness::start().await;
    h.modify_pending().await;
    h.request_return_and_exchange().await;
    for order in [PENDING, PROCESSED, CANCELLED, DELIVERED, DELIVERED_2] {
        let status = h.status_of(order).await;
        let why = format!("a {status} order cannot be cancelled");
        h.refused(h.cancel(order, "no longer needed"), order, (StatusCode::CONFLICT, "order_not_pending"), &why).await;
    }
    let (status, body) = h.cancel(PENDING_CARD, "no longer needed").await;
    assert_eq!(status, StatusCode::OK, "a pending order is cancelled: {body}");
}

#[tokio::test]
async fn rule_cancel_reason() {
    let h = Harness::start().await;
    for reason in ["changed my mind", "No Longer Needed", ""] {
        let why = format!("{reason:?} is not one of the two reasons");
        h.refused(
            h.cancel(PENDING_CARD, reason),
            PENDING_CARD,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_reason"),
            &why,
        )
        .await;
    }
    let (status, body) = h.cancel(PENDING_CARD, "no longer needed").await;
    assert_eq!((status, &body["order"]["cancel_reason"]), (StatusCode::OK, &json!("no longer needed")), "{body}");
    let (status, body) = h.cancel(PENDING_GIFT, "ordered by mistake").await;
    assert_eq!((status, &body["order"]["cancel_reason"]), (StatusCode::OK, &json!("ordered by mistake")), "{body}");
}

#[tokio::test]
async fn rule_cancel_refund() {
    let h = Harness::start().await;
    let (status, body) = h.cancel(PENDING_GIFT, "ordered by mistake").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "cancelled");
    assert_eq!(
        history(&body["order"]),
        vec![tx("payment", "335.99", "gift_card_8836799"), tx("refund", "335.99", "gift_card_8836799")]
    );
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "413.99", "a gift card is refunded at once");

    let (status, body) = h.cancel(PENDING_CARD, "no longer needed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        history(&body["order"])[1],
        tx("refund", "321.18", "credit_card_8554680"),
        "a card gets its payment back"
    );
}

// ------------------------------------------------------------------ pending order changes

#[tokio::test]
async fn rule_modify_pending_only() {
    let h = Harness::start().await;
    h.request_return_and_exchange().await;
    for order in [PROCESSED, CANCELLED, DELIVERED, DELIVERED_2] {
        let status = h.status_of(order).await;
        let conflict = (StatusCode::CONFLICT, "order_not_pending");
        let path = format!("/orders/{order}");
        h.refused(
            h.put(&format!("{path}/shipping-address"), address()),
            order,
            conflict,
            &format!("a {status} order's address stays"),
        )
        .await;
        h.refused(
            h.put(&format!("{path}/payment-method"), json!({ "payment_method_id": "paypal_1038468" })),
            order,
            conflict,
            &format!("a {status} order's payment stays"),
        )
        .await;
        h.refused(
            h.post(&format!("{path}/item-modifications"), swap("1583904702", "1583904702", "x")),
            order,
            conflict,
            &format!("a {status} order's items stay"),
        )
        .await;
    }
}

#[tokio::test]
async fn rule_items_once() {
    let h = Harness::start().await;
    h.modify_pending().await;
    let path = format!("/orders/{PENDING}");
    let order = h.order(PENDING).await;
    assert_eq!(order["status"], "pending (item modified)");

    h.refused(
        h.post(&format!("{path}/item-modifications"), swap("9421195098", "1199058591", "paypal_1038468")),
        PENDING,
        (StatusCode::CONFLICT, "items_already_modified"),
        "items are modified once",
    )
    .await;
    let conflict = (StatusCode::CONFLICT, "order_not_pending");
    let before = h.order(PENDING).await;
    let (status, error) = h.cancel(PENDING, "no longer needed").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("items were modified"), "says why: {error}");
    h.refused_since(before, (status, error), PENDING, conflict, "a modified order can no longer be cancelled").await;
    h.refused(h.put(&format!("{path}/shipping-address"), address()), PENDING, conflict, "nor re-addressed").await;
    h.refused(
        h.put(&format!("{path}/payment-method"), json!({ "payment_method_id": "gift_card_7777844" })),
        PENDING,
        conflict,
        "nor paid otherwise",
    )
    .await;
    assert_eq!(h.balance("emma_kovacs_7176", "gift_card_7777844").await, "79.00");
}

#[tokio::test]
async fn rule_items_once_on_the_pages() {
    let h = Harness::start().await;
    h.modify_pending().await;
    let mut b = Browser::new(&h);
    b.login().await;
    let before = h.order(PENDING).await;

    let csrf = b.csrf(&format!("/seller/orders/{PENDING}/cancel")).await;
    let (status, _, html) = b
        .post(&format!("/seller/orders/{PENDING}/cancel"), &[("csrf_token", &csrf), ("reason", "no longer needed")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the page refuses what the API refuses: {html}");
    assert!(html.contains("<p id=\"error-code\">order_not_pending</p>"), "{html}");

    let csrf = b.csrf(&format!("/seller/orders/{PENDING}/address")).await;
    let form = springfield_form(&csrf);
    let (status, _, html) = b.post(&format!("/seller/orders/{PENDING}/address"), &form).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("<p id=\"error-code\">order_not_pending</p>"), "{html}");
    assert_eq!(h.order(PENDING).await, before, "nothing changed");
}

#[tokio::test]
async fn rule_items_in_order() {
    let h = Harness::start().await;
    let other = swap("1111111111", "3369928769", "paypal_1038468");
    h.items_refused(other, "item_not_in_order", "an item the order does not hold").await;
    let twice = json!({ "items": [
        { "item_id": "9829827210", "new_item_id": "3369928769" },
        { "item_id": "9829827210", "new_item_id": "5206946487" }
    ], "payment_method_id": "paypal_1038468" });
    h.items_refused(twice, "item_not_in_order", "an item listed more often than held").await;
    let none = json!({ "items": [], "payment_method_id": "paypal_1038468" });
    h.items_refused(none, "invalid_request", "no item").await;
}

#[tokio::test]
async fn rule_items_same_product() {
    let h = Harness::start().await;
    let why = "a garden hose cannot become another product";
    h.items_refused(swap("9829827210", "9799386954", "paypal_1038468"), "product_mismatch", why).await;
}

#[tokio::test]
async fn rule_items_other_option() {
    let h = Harness::start().await;
    h.items_refused(swap("9829827210", "9829827210", "paypal_1038468"), "same_item", "the item already ordered").await;
}

#[tokio::test]
async fn rule_items_available() {
    let h = Harness::start().await;
    let why = "an unavailable variant";
    h.items_refused(swap("9829827210", "1518544029", "paypal_1038468"), "variant_unavailable", why).await;
}

#[tokio::test]
async fn rule_items_payment() {
    let h = Harness::start().await;
    let path = format!("/orders/{PENDING}/item-modifications");
    let why = "another customer's payment method";
    h.items_refused(swap("9829827210", "3369928769", "paypal_5181300"), "payment_method_not_found", why).await;
    // Tablet 903.95 -> 1054.43: a 150.48 rise, more than the 36.00 gift card holds.
    let why = "a gift card must cover the difference";
    h.refused(
        h.post("/orders/W2918688/item-modifications", swap("2106335193", "2235648106", "gift_card_6023546")),
        "W2918688",
        (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_gift_card_balance"),
        why,
    )
    .await;
    // Garden hose 90.43 -> 97.35: 6.92 charged to the gift card.
    let (status, body) = h.post(&path, swap("9829827210", "3369928769", "gift_card_7777844")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(history(&body["order"])[1], tx("payment", "6.92", "gift_card_7777844"));
    assert_eq!(payment_method(&body["customer"], "gift_card_7777844")["balance"], "72.08");
}

#[tokio::test]
async fn rule_payment_single() {
    let h = Harness::start().await;
    let path = format!("/orders/{PENDING_CARD}/payment-method");
    let (status, body) = h.put(&path, json!({ "payment_method_id": "paypal_1621947" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let why = "a pending order's payment is moved once";
    h.payment_refused("credit_card_8897086", (StatusCode::CONFLICT, "payment_already_changed"), why).await;
    assert_eq!(h.status_of(PENDING_CARD).await, "pending");
}

#[tokio::test]
async fn rule_payment_different() {
    let h = Harness::start().await;
    let same = (StatusCode::UNPROCESSABLE_ENTITY, "same_payment_method");
    h.payment_refused("credit_card_8554680", same, "the method it has").await;
    let why = "another customer's method";
    h.payment_refused("paypal_5181300", (StatusCode::UNPROCESSABLE_ENTITY, "payment_method_not_found"), why).await;
}

#[tokio::test]
async fn rule_payment_gift_card() {
    let h = Harness::start().await;
    let why = "a 60.00 gift card cannot pay 321.18";
    let short = (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_gift_card_balance");
    h.payment_refused("gift_card_8245350", short, why).await;
}

#[tokio::test]
async fn rule_payment_refund() {
    let h = Harness::start().await;
    let (status, body) = h
        .put(&format!("/orders/{PENDING_GIFT}/payment-method"), json!({ "payment_method_id": "credit_card_6291943" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "pending", "the status stays");
    assert_eq!(
        history(&body["order"]),
        vec![
            tx("payment", "335.99", "gift_card_8836799"),
            tx("refund", "335.99", "gift_card_8836799"),
            tx("payment", "335.99", "credit_card_6291943")
        ]
    );
    assert_eq!(h.balance("ava_smith_1453", "gift_card_8836799").await, "413.99", "the old gift card at once");
}

// ------------------------------------------------------------------ delivered orders

#[tokio::test]
async fn rule_return_delivered_only() {
    let h = Harness::start().await;
    h.modify_pending().await;
    let orders = [PENDING_CARD, PENDING, PROCESSED, CANCELLED];
    h.refused_unless_delivered(&orders, "returns", json!({ "item_ids": ["1"], "payment_method_id": "paypal_1" })).await;
}

#[tokio::test]
async fn rule_return_items() {
    let h = Harness::start().await;
    let path = format!("/orders/{DELIVERED}/returns");
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for (items, expected) in [
        (json!(["1111111111"]), "item_not_in_order"),
        (json!(["1583904702", "1583904702"]), "item_not_in_order"),
        (json!([]), "invalid_request"),
    ] {
        h.refused(
            h.post(&path, json!({ "item_ids": items, "payment_method_id": "paypal_5181300" })),
            DELIVERED,
            (unprocessable, expected),
            &items.to_string(),
        )
        .await;
    }
}

#[tokio::test]
async fn rule_return_refund_method() {
    let h = Harness::start().await;
    let path = format!("/orders/{DELIVERED}/returns");
    let body = |method: &str| json!({ "item_ids": ["1583904702"], "payment_method_id": method });
    let why = "neither the original method nor a gift card";
    h.refused(
        h.post(&path, body("credit_card_2641784")),
        DELIVERED,
        (StatusCode::UNPROCESSABLE_ENTITY, "refund_method_not_allowed"),
        why,
    )
    .await;
    h.refused(
        h.post(&path, body("gift_card_7794233")),
        DELIVERED,
        (StatusCode::UNPROCESSABLE_ENTITY, "payment_method_not_found"),
        "another's gift card",
    )
    .await;
    let (status, reply) = h.post(&path, body("gift_card_7471275")).await;
    assert_eq!(status, StatusCode::OK, "a gift card of the customer: {reply}");
    let (status, reply) = h
        .post(
            &format!("/orders/{DELIVERED_2}/returns"),
            json!({ "item_ids": ["9727387530"], "payment_method_id": "paypal_8049766" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the original method: {reply}");
}

#[tokio::test]
async fn rule_return_once() {
    let h = Harness::start().await;
    h.request_return_and_exchange().await;
    assert_eq!(h.status_of(DELIVERED).await, "return requested");
    let conflict = (StatusCode::CONFLICT, "order_not_delivered");
    let path = format!("/orders/{DELIVERED}");
    h.refused(
        h.post(
            &format!("{path}/returns"),
            json!({ "item_ids": ["6735339143"], "payment_method_id": "paypal_5181300" }),
        ),
        DELIVERED,
        conflict,
        "no second return",
    )
    .await;
    h.refused(
        h.post(&format!("{path}/exchanges"), swap("6735339143", "6735339143", "paypal_5181300")),
        DELIVERED,
        conflict,
        "no exchange after a return",
    )
    .await;
}

#[tokio::test]
async fn rule_exchange_delivered_only() {
    let h = Harness::start().await;
    h.modify_pending().await;
    h.refused_unless_delivered(&[PENDING_CARD, PENDING, PROCESSED, CANCELLED], "exchanges", swap("1", "2", "paypal_1"))
        .await;
}

#[tokio::test]
async fn rule_exchange_items() {
    let h = Harness::start().await;
    let path = format!("/orders/{DELIVERED_2}/exchanges");
    for (old, new, expected) in [
        ("1111111111", "3951031513", "item_not_in_order"),
        ("6242772310", "9799386954", "product_mismatch"),
        ("6242772310", "6242772310", "same_item"),
        ("9727387530", "4410138384", "variant_unavailable"),
    ] {
        h.refused(
            h.post(&path, swap(old, new, "paypal_8049766")),
            DELIVERED_2,
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            &format!("{old} -> {new}"),
        )
        .await;
    }
}

#[tokio::test]
async fn rule_exchange_payment() {
    let h = Harness::start().await;
    let path = format!("/orders/{DELIVERED_2}/exchanges");
    // Espresso machine 2996.03 -> 3289.46: +293.43, more than the 56.00 gift card.
    let why = "a gift card must cover the difference";
    h.refused(
        h.post(&path, swap("6242772310", "3951031513", "gift_card_7794233")),
        DELIVERED_2,
        (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_gift_card_balance"),
        why,
    )
    .await;
    let why = "another customer's method";
    h.refused(
        h.post(&path, swap("6242772310", "3951031513", "paypal_5181300")),
        DELIVERED_2,
        (StatusCode::UNPROCESSABLE_ENTITY, "payment_method_not_found"),
        why,
    )
    .await;
}

#[tokio::test]
async fn rule_exchange_once() {
    let h = Harness::start().await;
    h.request_return_and_exchange().await;
    assert_eq!(h.status_of(DELIVERED_2).await, "exchange requested");
    let conflict = (StatusCode::CONFLICT, "order_not_delivered");
    let path = format!("/orders/{DELIVERED_2}");
    h.refused(
        h.post(&format!("{path}/exchanges"), swap("9727387530", "9727387530", "paypal_8049766")),
        DELIVERED_2,
        conflict,
        "no second exchange",
    )
    .await;
    h.refused(
        h.post(
            &format!("{path}/returns"),
            json!({ "item_ids": ["9727387530"], "payment_method_id": "paypal_8049766" }),
        ),
        DELIVERED_2,
        conflict,
        "no return after an exchange",
    )
    .await;
}

#[tokio::test]
async fn rule_refund_partial_delivered_only() {
    let h = Harness::start().await;
    h.request_return_and_exchange().await;
    h.modify_pending().await;
    let orders = [PENDING_CARD, PENDING, PROCESSED, CANCELLED, DELIVERED, DELIVERED_2];
    h.refused_unless_delivered(&orders, "refunds", json!({ "amount": "1.00", "currency": "USD", "reason": "x" })).await;
}
