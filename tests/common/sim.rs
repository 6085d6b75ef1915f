//! vctp's own simulated vCenter, served in-process on 127.0.0.1 for as long as the test's
//! runtime lives.

use vctp::sim::{Clock, SimConfig, Simulator};

/// Serves `config`'s first vCenter; returns the simulator and that vCenter's SDK URL.
pub async fn start(config: SimConfig, clock: Clock) -> (Simulator, String) {
    let sim = Simulator::new(config, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let url = sim.sdk_urls(&base).remove(0);
    (sim, url)
}
