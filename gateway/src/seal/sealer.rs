//! Sealing: the streaming encryptor the gateway writes uploads through.

use ring::aead::LessSafeKey;
use std::fmt;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::*;

/// Streaming encryptor for one file. Holds at most one plaintext segment.
pub struct Sealer {
    pub(super) header: Vec<u8>,
    pub(super) header_hash: [u8; 32],
    pub(super) payload_key: LessSafeKey,
    pub(super) data_key: DataKey,
    pub(super) segment_len: usize,
    pub(super) counter: u64,
    pub(super) buf: Zeroizing<Vec<u8>>,
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
            buf: Zeroizing::new(Vec::with_capacity(segment_len)),
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

    /// Adds plaintext; appends to `out` every segment that is now complete.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            // A full buffer is sealed only once more data proves it is not the last
            // segment: the final segment must carry the last-segment flag, and a file
            // whose length is a multiple of the segment length ends in a full segment,
            // not an empty one, so that its ciphertext length has one reading.
            if self.buf.len() == self.segment_len {
                let buf = std::mem::take(&mut *self.buf);
                self.seal_segment(&buf, false, out);
                *self.buf = buf;
                self.buf.clear();
            }
            // Whole segments with more data after them are sealed straight from the input:
            // one copy of each byte instead of two (profiled on large uploads).
            if self.buf.is_empty() && data.len() > self.segment_len {
                let (segment, rest) = data.split_at(self.segment_len);
                self.seal_segment(segment, false, out);
                data = rest;
                continue;
            }
            let take = (self.segment_len - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }

    /// Seals the final segment into `out` and returns the data key, which lets the
    /// gateway re-read its own spool (for scanning) before it forgets the key.
    pub fn finish(mut self, out: &mut Vec<u8>) -> DataKey {
        let buf = std::mem::take(&mut *self.buf);
        self.seal_segment(&buf, true, out);
        *self.buf = buf;
        self.data_key.clone()
    }

    /// The plaintext buffer is reused from segment to segment (each overwrites the last) and
    /// zeroed when the sealer is dropped, not after every segment: that was a second pass
    /// over every byte.
    fn seal_segment(&mut self, plaintext: &[u8], last: bool, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = seal_in_place(
            &self.payload_key,
            segment_nonce(self.counter, last),
            &self.header_hash,
            &mut out[start..],
        );
        out.extend_from_slice(tag.as_ref());
        self.counter += 1;
    }
}
