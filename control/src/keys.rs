//! The control plane's key material: generated on first start, loaded on every start.
//! It holds the storage secret keys; the gateway gets only the public half (see gateway::keys).

use std::collections::HashMap;
use std::path::Path;

use ring::rand::SecureRandom;
use upgate_gateway::keys::{
    self, key_dir, list_keys, read_key32, KeyError, LINK_KEY_PREFIX, STORAGE_PUB_PREFIX,
};
use upgate_gateway::seal::RecipientSecretKey;
use upgate_gateway::tls::write_private;
use upgate_gateway::token::LinkKeyring;

pub struct ControlKeys {
    pub links: LinkKeyring,
    /// Every storage key by id, so files sealed before a rotation still open.
    pub storage: HashMap<u32, RecipientSecretKey>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the first link key and storage key pair if the key directory has none.
pub fn ensure_keys(data_dir: &Path) -> Result<(), KeyError> {
    let dir = key_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    if list_keys(&dir, LINK_KEY_PREFIX, ".key")?.is_empty() {
        let mut secret = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| KeyError::Missing("random"))?;
        let path = dir.join(format!("{LINK_KEY_PREFIX}1.key"));
        write_private(&path, &secret).map_err(io(&path))?;
    }
    if list_keys(&dir, STORAGE_PUB_PREFIX, ".secret")?.is_empty() {
        let key = RecipientSecretKey::generate(1);
        let secret_path = dir.join(format!("{STORAGE_PUB_PREFIX}1.secret"));
        write_private(&secret_path, &key.to_bytes()).map_err(io(&secret_path))?;
        let pub_path = dir.join(format!("{STORAGE_PUB_PREFIX}1.pub"));
        std::fs::write(&pub_path, key.public().bytes).map_err(io(&pub_path))?;
    }
    Ok(())
}

pub fn load_control_keys(data_dir: &Path) -> Result<ControlKeys, KeyError> {
    let dir = key_dir(data_dir);
    let links = keys::load_gateway_keys(data_dir)?.links;
    let mut storage = HashMap::new();
    for (id, path) in list_keys(&dir, STORAGE_PUB_PREFIX, ".secret")? {
        storage.insert(id, RecipientSecretKey::from_bytes(id, read_key32(&path)?));
    }
    if storage.is_empty() {
        return Err(KeyError::Missing("storage secret"));
    }
    Ok(ControlKeys { links, storage })
}
