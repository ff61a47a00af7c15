//! The planes apart, as the split-deployment tests set them up: a control plane with its
//! internal API, and gateways configured the way `docs/deployment.md` says.

use super::upgate::{free_port, link_path, Upgate};

/// A control plane (not started) with its internal API on a port of its own; `control`
/// holds extra `[control]` keys, `storage` a `[storage]` section.
pub fn control_plane(control: &str, storage: &str) -> (Upgate, u16) {
    let up = Upgate::configure("");
    let internal_port = free_port();
    let text = std::fs::read_to_string(&up.config).unwrap().replacen(
        "[control]\n",
        &format!("[control]\ninternal_listen = \"127.0.0.1:{internal_port}\"\n{control}"),
        1,
    );
    std::fs::write(&up.config, text).unwrap();
    up.rewrite_config(storage);
    (up, internal_port)
}

/// `upgate gateway-credential create --name NAME`, the credential it printed.
pub fn mint(control: &Upgate, name: &str) -> String {
    let (ok, out, err) = control.cli(&["gateway-credential", "create", "--name", name]);
    assert!(ok, "{err}");
    out.trim().to_string()
}

/// A gateway (not started) with its own data directory, the control plane's internal API
/// and its self-signed certificate, a credential, and `storage`.
pub fn gateway(control: &Upgate, internal_port: u16, credential: &str, storage: &str) -> Upgate {
    let gw = Upgate::configure("");
    let credential_file = gw.secret("gateway-credential", credential);
    let ca = control.data_dir().join("internal/tls/localhost.crt");
    let text = std::fs::read_to_string(&gw.config).unwrap().replacen(
        "[gateway]\n",
        &format!(
            "[gateway]\ncontrol_url = \"https://localhost:{internal_port}\"\ncontrol_ca_file = {:?}\n\
credential_file = {:?}\nkey_refresh = \"500ms\"\n",
            ca.display().to_string(),
            credential_file.display().to_string()
        ),
        1,
    );
    std::fs::write(&gw.config, text).unwrap();
    gw.rewrite_config(storage);
    gw
}

/// A link's URL as served by one particular gateway.
pub fn url_on(gw: &Upgate, link_url: &str) -> String {
    format!("https://localhost:{}/{}", gw.gateway_port, link_path(link_url))
}
