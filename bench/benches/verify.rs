//! Cost of verifying a webhook beside the bare HMAC-SHA256 of the same bytes.
//!
//! Run: `cargo bench -p sunusav-bench --bench verify`.

#![allow(missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sunusav_core::webhook::{Secret, Verifier};

const NOW: i64 = 1_700_000_000;
const ID: &str = "msg_2b9WzbDR8jZcT7Rk";
const HEX_KEY: &str = "the-group-webhook-secret";
const SW_KEY: [u8; 32] = [42; 32];

fn bench_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("webhook_verify");
    let hex_verifier = Verifier::hex_sha256([Secret::from_text(HEX_KEY).unwrap()]).unwrap();
    let sw_secret = format!("whsec_{}", STANDARD.encode(SW_KEY));
    let sw_verifier = Verifier::standard_webhooks([Secret::from_standard_webhooks(&sw_secret).unwrap()]).unwrap();
    let hex_mac = Hmac::<Sha256>::new_from_slice(HEX_KEY.as_bytes()).unwrap();
    let ts = NOW.to_string();

    for size in [1024_usize, 64 * 1024] {
        let body = vec![b'x'; size];
        group.throughput(Throughput::Bytes(u64::try_from(size).unwrap()));

        let mut mac = hex_mac.clone();
        mac.update(&body);
        let hex_value = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let hex_headers = [("x-sunu-signature", hex_value.as_str())];

        let mut mac = Hmac::<Sha256>::new_from_slice(&SW_KEY).unwrap();
        for part in [ID.as_bytes(), b".", ts.as_bytes(), b".", &body] {
            mac.update(part);
        }
        let sw_value = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        let sw_headers =
            [("webhook-id", ID), ("webhook-timestamp", ts.as_str()), ("webhook-signature", sw_value.as_str())];

        group.bench_with_input(BenchmarkId::new("bare_hmac_sha256", size), &body, |b, body| {
            b.iter(|| {
                let mut mac = hex_mac.clone();
                mac.update(black_box(body));
                black_box(mac.finalize())
            });
        });
        // The Standard Webhooks scheme signs `id.timestamp.body`: its bare
        // baseline is the HMAC of those bytes, not of the body alone.
        let sw_mac = Hmac::<Sha256>::new_from_slice(&SW_KEY).unwrap();
        group.bench_with_input(BenchmarkId::new("bare_hmac_sha256_signed_content", size), &body, |b, body| {
            b.iter(|| {
                let mut mac = sw_mac.clone();
                for part in [ID.as_bytes(), b".", ts.as_bytes(), b".", black_box(body)] {
                    mac.update(part);
                }
                black_box(mac.finalize())
            });
        });
        group.bench_with_input(BenchmarkId::new("verify_hex_sha256", size), &body, |b, body| {
            b.iter(|| hex_verifier.verify(black_box(&hex_headers), black_box(body), NOW).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("verify_standard_webhooks", size), &body, |b, body| {
            b.iter(|| sw_verifier.verify(black_box(&sw_headers), black_box(body), NOW).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
