//! Build again when a migration is added or changed: `sqlx::migrate!` embeds
//! `migrations/` in the binary at compile time, and cargo does not watch that folder by
//! itself (without this, an incremental build kept running the migrations it had).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
