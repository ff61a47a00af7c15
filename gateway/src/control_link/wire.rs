//! The internal API: [`ControlLink`] as versioned messages, one POST per call. Both sides
//! share these types, so the in-process link and the remote client answer alike (one test
//! suite runs against both, in the control crate).
//!
//! `POST /internal/v1/control-link` with a [`Call`] as JSON, answered 200 with a [`Reply`].
//! A reply to a call of another version says which version it speaks, so a gateway newer
//! than its control plane fails with a plain message rather than a parse error.

use serde::{Deserialize, Serialize};

use super::{
    Claim, ControlError, ControlLink, KeySet, LinkState, LinkView, NewFile, Refusal, ReportOutcome, SmsReport,
};
use crate::token::LinkId;

/// The wire version these types speak.
pub const VERSION: u32 = 1;
/// Where the control plane answers calls.
pub const PATH: &str = "/internal/v1/control-link";

#[derive(Debug, Serialize, Deserialize)]
pub struct Call {
    pub v: u32,
    pub request: Request,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Link { link_id: LinkId },
    Claim { link_id: LinkId },
    Renew { claim: Claim },
    Release { claim: Claim },
    Commit { claim: Claim, file: NewFile },
    Refused { link_id: LinkId, refusal: Refusal },
    Finish { link_id: LinkId },
    Opened { link_id: LinkId },
    Keys,
    SmsReport { report: SmsReport },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub v: u32,
    pub answer: Answer,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Link {
        view: LinkView,
    },
    Claimed {
        claim: Claim,
    },
    /// The link takes no more files (claim), or refused the file (commit): it is in `state`.
    NotActive {
        state: LinkState,
    },
    Renewed {
        held: bool,
    },
    /// The link's state after a commit or a finish.
    State {
        state: LinkState,
    },
    Done,
    Keys {
        keys: KeySet,
    },
    Report {
        outcome: ReportOutcome,
    },
    UnknownLink,
    Unavailable {
        detail: String,
    },
    /// The call's version is not spoken here; `supported` is.
    WrongVersion {
        supported: u32,
    },
}

impl Reply {
    fn of(answer: Answer) -> Reply {
        Reply { v: VERSION, answer }
    }
}

fn failed(e: ControlError) -> Answer {
    match e {
        ControlError::UnknownLink => Answer::UnknownLink,
        ControlError::Unavailable(detail) => Answer::Unavailable { detail },
    }
}

/// The server's side: runs one call against a link (the control plane's in-process one).
pub async fn answer(link: &dyn ControlLink, call: Call) -> Reply {
    if call.v != VERSION {
        return Reply::of(Answer::WrongVersion { supported: VERSION });
    }
    let answer = match call.request {
        Request::Link { link_id } => link.link(&link_id).await.map(|view| Answer::Link { view }),
        Request::Claim { link_id } => link.claim(&link_id).await.map(|r| match r {
            Ok(claim) => Answer::Claimed { claim },
            Err(state) => Answer::NotActive { state },
        }),
        Request::Renew { claim } => link.renew(&claim).await.map(|held| Answer::Renewed { held }),
        Request::Release { claim } => {
            link.release(&claim).await;
            Ok(Answer::Done)
        }
        Request::Commit { claim, file } => link.commit(&claim, file).await.map(|r| match r {
            Ok(state) => Answer::State { state },
            Err(state) => Answer::NotActive { state },
        }),
        Request::Refused { link_id, refusal } => {
            link.refused(&link_id, refusal).await;
            Ok(Answer::Done)
        }
        Request::Finish { link_id } => link.finish(&link_id).await.map(|state| Answer::State { state }),
        Request::Opened { link_id } => {
            link.opened(&link_id).await;
            Ok(Answer::Done)
        }
        Request::Keys => link.keys().await.map(|keys| Answer::Keys { keys }),
        Request::SmsReport { report } => link
            .sms_report(report)
            .await
            .map(|outcome| Answer::Report { outcome }),
    };
    Reply::of(answer.unwrap_or_else(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format is a contract with gateways of other builds: its spelling is pinned.
    #[test]
    fn the_wire_spelling_is_stable() {
        let id: LinkId = "00112233445566778899aabb".parse().unwrap();
        let call = Call {
            v: VERSION,
            request: Request::Claim { link_id: id },
        };
        assert_eq!(
            serde_json::to_string(&call).unwrap(),
            r#"{"v":1,"request":{"op":"claim","link_id":"00112233445566778899aabb"}}"#
        );
        let reply = Reply::of(Answer::Claimed {
            claim: Claim {
                link_id: id,
                lease: 7,
                ttl_secs: 60,
                recipient: None,
            },
        });
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"v":1,"answer":{"answer":"claimed","claim":{"link_id":"00112233445566778899aabb","lease":7,"ttl_secs":60}}}"#
        );
        let refused: Request = serde_json::from_str(
            r#"{"op":"refused","link_id":"00112233445566778899aabb","refusal":{"code":"type_not_allowed","display_name":"a.exe","size":3,"verdict":null}}"#,
        )
        .unwrap();
        assert!(
            matches!(refused, Request::Refused { refusal, .. } if refusal.code == super::super::RefusalCode::TypeNotAllowed)
        );
    }

    #[test]
    fn a_link_id_on_the_wire_is_checked_as_strictly_as_in_a_url() {
        for bad in ["00112233445566778899AABB", "0011", "00112233445566778899aabg"] {
            let text = format!(r#"{{"op":"link","link_id":"{bad}"}}"#);
            assert!(serde_json::from_str::<Request>(&text).is_err(), "{bad}");
        }
    }
}
