//! Rebuilds the crate when a migration is added or edited: `embed_migrations!` compiles the
//! migrations into the binary, and cargo only watches what it is told to.

fn main() {
    println!("cargo::rerun-if-changed=../../migrations");
}
