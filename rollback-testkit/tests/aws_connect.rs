#![allow(clippy::unwrap_used)]
//! `AwsEmulator::connect`: attaching to an emulator that something else started.

use rollback_testkit::AwsEmulator;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn connect_attaches_without_owning_the_process() {
    let emu = AwsEmulator::start().await.unwrap();
    let attached = AwsEmulator::connect(format!("{}/", emu.endpoint()))
        .await
        .unwrap();
    assert_eq!(attached.endpoint(), emu.endpoint());
    assert_eq!(attached.pid(), None);
    let spec = json!({"lambda": [{"function": "f", "alias": "live", "versions": ["a", "b"]}]});
    attached.seed(spec).await.unwrap();
    assert_eq!(attached.call_count("UpdateAlias").await.unwrap(), 0);
    drop(attached);
    // Dropping the attached handle left the emulator running, with what was seeded.
    let status = emu.control("GET", "ping", None).await.unwrap();
    assert_eq!(status["ok"], json!(true));
    let again = emu.seed(json!({"lambda": [{"function": "f", "versions": ["a"]}]}));
    assert!(
        again.await.is_err(),
        "f was seeded through the attached handle"
    );
}

#[tokio::test]
async fn connect_refuses_an_endpoint_without_the_control_api() {
    // A plain server (as moto or LocalStack would answer /_emulator/ping): 404.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    let err = AwsEmulator::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("ping") && err.contains("404"), "{err}");
}
