//! Client-certificate benchmarks: building `context.Request.Certificate`
//! from the certificate the HTTPS listener saw (per request that presents
//! one), `Verify()`, and `validate-client-certificate` (dates, chain to a
//! stored CA certificate, revocation against its CRL, a thumbprint
//! identity). Figures only; run with `cargo bench --bench client_certificates`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::sync::Arc;
use turnpike::error::Secret;
use turnpike::model::{Certificate, PeerCert};
use turnpike::policy::builtin::validate_client_certificate::{request_certificate, Trust};
use turnpike::policy::builtin::{compile_document_trust, run_plain, test_state, Section};

fn benches(c: &mut Criterion) {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, "Bench CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("key");
    let ca = p.self_signed(&key).expect("ca");
    let issuer = Issuer::new(p, key);
    let mut leaf = CertificateParams::new(vec!["client.example".to_string()]).expect("params");
    leaf.distinguished_name.push(DnType::CommonName, "client");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
    let peer = Arc::new(PeerCert::from_chain(&[leaf.der().clone()]).expect("peer"));

    let mut stored = Certificate {
        pem: Secret::new(ca.pem()),
        is_ca: true,
        ..Certificate::default()
    };
    let mut problems = Vec::new();
    stored.normalize(&mut problems);
    let certs = [("ca".to_string(), stored)];
    let trust = Arc::new(Trust::new(certs.iter().map(|(i, c)| (i, c))));

    c.bench_function("context.Request.Certificate: build from the peer", |b| {
        b.iter(|| request_certificate(black_box(&peer), &trust))
    });
    let cert = request_certificate(&peer, &trust);
    let verifier = cert.verifier.clone().expect("verifier");
    c.bench_function("Certificate.Verify()", |b| {
        b.iter(|| verifier.verify(black_box(true)))
    });

    let xml = format!(
        r#"<policies><inbound><validate-client-certificate><identities><identity thumbprint="{}" /></identities></validate-client-certificate></inbound></policies>"#,
        peer.thumbprint
    );
    let doc = compile_document_trust(
        &xml,
        &|_| None,
        &|_| None,
        &|_| true,
        None,
        None,
        Some(trust.clone()),
    )
    .expect("compiles");
    let steps = doc.section(Section::Inbound).expect("inbound");
    let mut st = test_state(Section::Inbound);
    st.peer_cert = Some(peer.clone());
    c.bench_function("validate-client-certificate: trust + thumbprint", |b| {
        b.iter(|| run_plain(black_box(steps), &mut st).is_ok())
    });
}

criterion_group!(client_certificates, benches);
criterion_main!(client_certificates);
