//! Sealing: the streaming encryptor the gateway writes uploads through.

use ring::aead::LessSafeKey;
use std::fmt;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::*;

/// Streaming encryptor for one file. Plaintext is copied once, into the caller's output
/// buffer, and sealed there in place once its segment is complete; the sealer itself holds
/// no plaintext (before, a segment buffer of its own cost a second copy of every byte and
/// 64 KiB per upload: docs/performance.md).
pub struct Sealer {
    pub(super) header: Vec<u8>,
    pub(super) header_hash: [u8; 32],
    pub(super) payload_key: LessSafeKey,
    pub(super) data_key: DataKey,
    pub(super) segment_len: usize,
    pub(super) counter: u64,
    /// Plaintext bytes of the segment being filled, at the end of the caller's buffer.
    pub(super) pending: usize,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("header_len", &self.header.len())
            .field("segment_len", &self.segment_len)
            .field("segments_written", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Starts sealing a file for `recipient`, bound to `file_id` (the storage id the
    /// object will live under, at most 255 bytes), with a fresh random data key.
    pub fn new(recipient: &RecipientPublicKey, file_id: &str) -> Result<Sealer, SealError> {
        let data_key = random_32()?;
        let ephemeral = random_32()?;
        Self::build(
            recipient,
            file_id,
            SEGMENT_LEN,
            DataKey(*data_key),
            StaticSecret::from(*ephemeral),
        )
    }

    /// Fixed keys, so that the test vectors are reproducible. Test-only: a repeated
    /// data key outside tests would be a repeated AES-GCM (key, nonce) pair.
    #[cfg(test)]
    pub(super) fn deterministic(
        recipient: &RecipientPublicKey,
        file_id: &str,
        segment_len: usize,
        data_key: [u8; 32],
        ephemeral: [u8; 32],
    ) -> Result<Sealer, SealError> {
        Self::build(
            recipient,
            file_id,
            segment_len,
            DataKey(data_key),
            StaticSecret::from(ephemeral),
        )
    }

    fn build(
        recipient: &RecipientPublicKey,
        file_id: &str,
        segment_len: usize,
        data_key: DataKey,
        ephemeral: StaticSecret,
    ) -> Result<Sealer, SealError> {
        let file_id = file_id.as_bytes();
        let file_id_len =
            u8::try_from(file_id.len()).map_err(|_| SealError::FileIdTooLong { len: file_id.len() })?;
        let segment_len_u32 = u32::try_from(segment_len)
            .ok()
            .filter(|_| (MIN_SEGMENT_LEN..=MAX_SEGMENT_LEN).contains(&segment_len))
            .ok_or(SealError::InvalidSegmentLength { len: segment_len })?;

        let ephemeral_public = PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient.bytes));
        if !shared.was_contributory() {
            return Err(SealError::LowOrderRecipient {
                key_id: recipient.key_id,
            });
        }

        let mut header = Vec::with_capacity(MIN_HEADER_LEN + file_id.len());
        header.extend_from_slice(&MAGIC);
        header.push(VERSION);
        header.extend_from_slice(&recipient.key_id.to_be_bytes());
        header.extend_from_slice(&segment_len_u32.to_be_bytes());
        header.extend_from_slice(ephemeral_public.as_bytes());
        header.push(file_id_len);
        header.extend_from_slice(file_id);

        // The wrapped key is the header's last field, so the wrap can authenticate every
        // header byte before it as AAD (it cannot be its own AAD); its own bytes are
        // covered by its tag. Segments then authenticate the complete header.
        let wrap_key = aes_key(&wrap_key_bytes(
            shared.as_bytes(),
            ephemeral_public.as_bytes(),
            &recipient.bytes,
        ));
        let mut wrapped = Zeroizing::new(data_key.0);
        let tag = seal_in_place(&wrap_key, wrap_nonce(), &header, &mut wrapped[..]);
        header.extend_from_slice(&wrapped[..]);
        header.extend_from_slice(tag.as_ref());

        let header_hash = sha256(&header);
        let payload_key = aes_key(&payload_key_bytes(&data_key, &header_hash));
        Ok(Sealer {
            header,
            header_hash,
            payload_key,
            data_key,
            segment_len,
            counter: 0,
            pending: 0,
        })
    }

    /// The header: write these bytes before anything `push` or `finish` produces.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Plaintext bytes per segment of this file.
    pub fn segment_len(&self) -> usize {
        self.segment_len
    }

    /// Plaintext bytes the segment being filled can still take.
    pub fn room(&self) -> usize {
        self.segment_len - self.pending
    }

    /// A whole segment of plaintext waits at the end of the output: [`Sealer::seal_full`]
    /// seals it once more data proves it is not the last.
    pub fn is_full(&self) -> bool {
        self.pending == self.segment_len
    }

    /// Copies plaintext (at most [`Sealer::room`] bytes) to the end of `out`, where the
    /// segment being filled lies. Until that segment is sealed, those bytes must stay at
    /// the end of `out`: hand the same buffer to every call.
    pub fn absorb(&mut self, data: &[u8], out: &mut Vec<u8>) {
        assert!(
            data.len() <= self.room(),
            "more plaintext than the segment has room for"
        );
        out.extend_from_slice(data);
        self.pending += data.len();
    }

    /// Seals the whole segment at the end of `out`, in place, as not the last one. A full
    /// segment is sealed only once more data proves it is not the last: the final segment
    /// must carry the last-segment flag, and a file whose length is a multiple of the
    /// segment length ends in a full segment, not an empty one, so that its ciphertext
    /// length has one reading.
    pub fn seal_full(&mut self, out: &mut Vec<u8>) {
        assert!(self.is_full(), "only a full segment is sealed before the end");
        self.seal_pending(false, out);
    }

    /// Adds plaintext: after it, `out` holds every segment sealed so far and, at its end,
    /// the plaintext of the segment not yet complete (see [`Sealer::absorb`]).
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            if self.is_full() {
                self.seal_full(out);
            }
            let take = self.room().min(data.len());
            self.absorb(&data[..take], out);
            data = &data[take..];
        }
    }

    /// Seals the final segment at the end of `out` and returns the data key, which lets the
    /// gateway re-read its own spool (for scanning) before it forgets the key.
    pub fn finish(mut self, out: &mut Vec<u8>) -> DataKey {
        self.seal_pending(true, out);
        self.data_key.clone()
    }

    fn seal_pending(&mut self, last: bool, out: &mut Vec<u8>) {
        let start = out
            .len()
            .checked_sub(self.pending)
            .expect("the segment's plaintext is still at the end of the output");
        let tag = seal_in_place(
            &self.payload_key,
            segment_nonce(self.counter, last),
            &self.header_hash,
            &mut out[start..],
        );
        out.extend_from_slice(tag.as_ref());
        self.counter += 1;
        self.pending = 0;
    }
}
