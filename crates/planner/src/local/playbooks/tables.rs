//! The tables of the playbooks file: one per playbook, each closed to unknown keys, each
//! field typed by what it is (see the parent module).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::{
    ActionHole, ActionMessage, Amount, Cite, Cites, ItemHole, ItemOrder, ItemsOrder, NameHole, NotesHole, OrderHole,
    OrderStatus, OrdersHole, ProductVariants, Say, SourceEntry, SourceHole, TrackingHole, When,
};
use crate::local::intents::Intent;

table! {
    /// The playbooks file as a whole.
    PlaybooksFile {
        reply: Reply,
        reading: Phrases,
        sources: BTreeMap<String, Spanned<SourceEntry>>,
        playbooks: Set,
    }
}

table! {
    /// How every reply is put together.
    Reply {
        greeting: Say<NameHole>,
        greeting_unnamed: Say,
        sign_off: Say,
        /// Said when no playbook said anything.
        fallback: Say,
        /// The note to the agent, after the reply.
        note: Say<NotesHole>,
        not_quoted: Say<SourceHole>,
        read_refused: Say<ActionHole>,
        read_failed: Say<ActionMessage>,
    }
}

table! {
    /// How the customer's text is read: one phrase per intent and per escalation, and the
    /// phrases that settle what the words alone leave open.
    Phrases {
        intents: IntentPhrases,
        escalations: EscalationPhrases,
        insult: When,
        not_an_item: When,
        not_a_return: When,
        refund_explicit: When,
        not_working: When,
        already_reset: When,
        not_a_product: When,
        mentions_order: When,
    }
}

table! {
    IntentPhrases {
        order_status: When,
        cancel_order: When,
        #[serde(rename = "return")]
        return_items: When,
        exchange: When,
        modify_items: When,
        modify_address: When,
        modify_payment: When,
        refund: When,
        goodwill: When,
        account_recovery: When,
        email_change: When,
        product_question: When,
        complaint: When,
        out_of_scope: When,
    }
}

table! {
    /// Checked in this order; the first that matches is the escalation.
    EscalationPhrases {
        self_harm: When,
        threat: When,
        information_request: When,
        takeover: When,
        third_party: When,
        manipulation: When,
        legal: When,
        supervisor: When,
        rule: When,
    }
}

table! {
    Set {
        escalated: Escalated,
        identify: Identify,
        look: Look,
        order_status: OrderStatusBook,
        cancel_order: Cancel,
        #[serde(rename = "return")]
        return_items: Return,
        change_items: ChangeItems,
        modify_address: Address,
        modify_payment: Payment,
        refund: Refund,
        goodwill: Goodwill,
        account_recovery: Recovery,
        email_change: EmailChange,
        product_question: Products,
        complaint: Complaint,
        out_of_scope: OutOfScope,
    }
}

table! {
    Escalated {
        self_harm_say: Say,
        self_harm_cite: Vec<Cite>,
        threat_cite: Vec<Cite>,
        passing_on_say: Say,
        abuse_cite: Vec<Cite>,
        legal_request: When,
        legal_request_cite: Vec<Cite>,
        deletion_request: When,
        deletion_request_cite: Vec<Cite>,
        information_request_cite: Vec<Cite>,
        information_request_say: Say,
        third_party_cite: Vec<Cite>,
        third_party_say: Say,
        security_cite: Vec<Cite>,
        security_say: Say,
        chargeback: When,
        chargeback_cite: Vec<Cite>,
        email_access: When,
        team_lead_cite: Vec<Cite>,
        team_lead_say: Say,
    }
}

table! {
    Identify {
        out_of_scope_say: Say,
        by_email_why: String,
        by_email_say: Say,
        by_name_zip_why: String,
        by_name_zip_say: Say,
        ask_say: Say,
        cite: Vec<Cite>,
        first_intent_cite: BTreeMap<Intent, Vec<Cite>>,
    }
}

table! {
    Look {
        customer_why: String,
        order_why: String,
        order_unseen: Say<OrderHole>,
    }
}

table! {
    OrderStatusBook {
        no_order_say: Say,
        stuck: When,
        stuck_cite: Vec<Cite>,
        says_delivered: When,
        says_delivered_say: Say<OrderStatus>,
        says_delivered_cite: Vec<Cite>,
        status_say: Say<OrderStatus>,
        by_a_date: When,
        by_a_date_cite: Vec<Cite>,
        tracking: When,
        pending_tracking_cite: Vec<Cite>,
        pending_cite: Vec<Cite>,
        tracking_say: Say<TrackingHole>,
        processed_cite: Vec<Cite>,
        cancelled_cite: Vec<Cite>,
        other_cite: Vec<Cite>,
        asks_when: When,
        asks_when_cite: Vec<Cite>,
    }
}

table! {
    Cancel {
        undo: When,
        undo_say: Say,
        undo_cite: Vec<Cite>,
        by_mistake: When,
        by_mistake_reason: String,
        not_needed: When,
        not_needed_reason: String,
        too_late_say: Say<OrderStatus>,
        too_late_cite: Vec<Cite>,
        delivered_cite: Vec<Cite>,
        why: String,
        prepared_say: Say<OrdersHole>,
        one_cite: Vec<Cite>,
        several_cite: Vec<Cite>,
        refund_cite: Vec<Cite>,
        gift_card: When,
        gift_card_cite: Vec<Cite>,
        ask_reason_first_cite: Vec<Cite>,
        ask_reason_say: Say,
        ask_reason_cite: Vec<Cite>,
    }
}

table! {
    Return {
        not_theirs: When,
        not_theirs_say: Say,
        not_theirs_cite: Vec<Cite>,
        not_delivered_say: Say<OrderStatus>,
        not_delivered_cite: Vec<Cite>,
        no_order_say: Say,
        no_order_cite: Vec<Cite>,
        whole_order: When,
        which_item_say: Say<OrderHole>,
        which_item_cite: Vec<Cite>,
        no_payment_unseen: Say<OrderHole>,
        why: String,
        prepared_say: Say<ItemsOrder>,
        faulty: When,
        faulty_cite: Vec<Cite>,
        steps_cite: Vec<Cite>,
        how_long: When,
        how_long_cite: Vec<Cite>,
        refund_to: When,
        refund_to_cite: Vec<Cite>,
        several_delivered_cite: Vec<Cite>,
    }
}

table! {
    ChangeItems {
        not_changeable_say: Say<OrderStatus>,
        pending_overview_cite: Vec<Cite>,
        pending_cite: Vec<Cite>,
        exchange_cite: Vec<Cite>,
        exchange_unavailable_cite: Vec<Cite>,
        which_item_say: Say<OrderHole>,
        add_or_remove: When,
        same_product_say: Say<OrderHole>,
        variants_why: String,
        why: String,
        prepared_say: Say<ItemOrder>,
        unavailable_say: Say<ItemHole>,
        which_option_say: Say<ItemHole>,
    }
}

table! {
    Address {
        on_file: When,
        account_why: String,
        order_why: String,
        prepared_say: Say<OrderHole>,
        eligible_cite: Vec<Cite>,
        ask_say: Say<OrderHole>,
        ask_cite: Vec<Cite>,
        too_late_say: Say<OrderStatus>,
        which_order_say: Say,
    }
}

table! {
    Payment {
        card_details: When,
        card_details_say: Say,
        card_details_cite: Vec<Cite>,
        too_late_say: Say<OrderStatus>,
        eligible_cite: Vec<Cite>,
        paypal: When,
        gift_card: When,
        why: String,
        prepared_say: Say<OrderHole>,
        gift_card_cite: Vec<Cite>,
        which_method_say: Say,
    }
}

table! {
    Refund {
        price_drop: When,
        price_drop_cite: Vec<Cite>,
        cancelled_unless_cited: Cite,
        cancelled_say: Say<OrderHole>,
        long_wait: When,
        long_wait_cite: Vec<Cite>,
        timing_cite: Vec<Cite>,
        cancel: When,
        cancel_timing_cite: Vec<Cite>,
        damaged: When,
        not_delivered_say: Say<OrderStatus>,
        partial_cite: Vec<Cite>,
        which_item_say: Say<OrderHole>,
        /// The share of the item's price a partial refund proposes.
        share: Amount,
        currency: String,
        reason: Say<ItemHole>,
        why: String,
        prepared_say: Say<ItemOrder>,
    }
}

table! {
    Goodwill {
        service_failure: When,
        for_a_review: When,
        not_a_right_cite: Vec<Cite>,
        asked_for: When,
        limits_cite: Vec<Cite>,
        amount: Amount,
        currency: String,
        reason: String,
        why: String,
        prepared_say: Say,
        when_cite: Vec<Cite>,
    }
}

table! {
    Recovery {
        no_email_access: When,
        no_email_access_cite: Vec<Cite>,
        not_here_say: Say,
        dm_cite: Vec<Cite>,
        not_verified_cite: Vec<Cite>,
        self_service_cite: Vec<Cite>,
        why: String,
        prepared_say: Say,
        never_arrives: When,
        never_arrives_cite: Vec<Cite>,
    }
}

table! {
    EmailChange {
        dm_cite: Vec<Cite>,
        requirements_cite: Vec<Cite>,
        which_email_say: Say,
        why: String,
        prepared_say: Say,
    }
}

table! {
    Products {
        place_order: When,
        place_order_cite: Vec<Cite>,
        place_order_say: Say,
        list_why: String,
        not_found_say: Say,
        catalog_cite: Vec<Cite>,
        details_why: String,
        variants_say: Say<ProductVariants>,
        about_variants: When,
        variants_cite: Vec<Cite>,
        questions_cite: Vec<Cite>,
    }
}

table! {
    Complaint {
        say: Say,
        cite: Vec<Cite>,
    }
}

table! {
    OutOfScope {
        say: Say,
    }
}
