use super::*;

fn sample_batch() -> Vec<u8> {
    let mut w = Writer::batch(0);
    w.message(
        "orders.new",
        b"{\"id\":1}",
        [("trace", "abc"), ("trace", "def")],
        Some("_INBOX.1"),
        None,
    );
    w.message("orders.log", &[0xff, 0x00, 0xfe], [], None, Some("c-7"));
    w.message("", b"", [], Some(""), Some(""));
    w.finish()
}

fn sample_outcomes() -> Vec<u8> {
    let mut w = Writer::outcomes(0);
    w.done();
    w.reply(b"ok", [("content-type", "text/plain")]);
    w.error(&Error {
        kind: 0,
        code: 404,
        name: "Not Found",
        message: "no such order",
        data: Some(b"{\"id\":1}"),
        retry: false,
    });
    w.error(&Error {
        retry: true,
        ..Error::default()
    });
    w.finish()
}

fn sample_verdicts() -> Vec<u8> {
    let mut w = Writer::verdicts(0);
    w.pass([("x-user", "ann"), ("x-role", "admin")], Some(Guard::Admin));
    w.pass([], None);
    w.reply(b"cached", [("content-type", "text/plain")]);
    w.error(&Error {
        code: 401,
        message: "no token",
        ..Error::default()
    });
    w.finish()
}

fn verdicts(frame: &[u8]) -> Result<Vec<Verdict<'_>>, FrameError> {
    let mut r = Reader::verdicts(frame)?;
    let mut out = Vec::new();
    while let Some(v) = r.verdict() {
        out.push(v?);
    }
    r.finish()?;
    Ok(out)
}

fn messages(frame: &[u8]) -> Result<Vec<Message<'_>>, FrameError> {
    let mut r = Reader::batch(frame)?;
    let mut out = Vec::new();
    while let Some(m) = r.message() {
        out.push(m?);
    }
    r.finish()?;
    Ok(out)
}

fn outcomes(frame: &[u8]) -> Result<Vec<Outcome<'_>>, FrameError> {
    let mut r = Reader::outcomes(frame)?;
    let mut out = Vec::new();
    while let Some(o) = r.outcome() {
        out.push(o?);
    }
    r.finish()?;
    Ok(out)
}

#[test]
fn messages_round_trip_byte_for_byte() {
    let frame = sample_batch();
    let got = messages(&frame).expect("parses");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].subject, "orders.new");
    assert_eq!(got[0].body, b"{\"id\":1}");
    assert_eq!(got[0].headers, vec![("trace", "abc"), ("trace", "def")]);
    assert_eq!(got[0].reply_to, Some("_INBOX.1"));
    assert_eq!(got[0].correlation_id, None);
    assert_eq!(got[1].body, &[0xff, 0x00, 0xfe], "binary bodies are kept");
    assert_eq!((got[1].reply_to, got[1].correlation_id), (None, Some("c-7")));
    assert_eq!(
        (got[2].reply_to, got[2].correlation_id),
        (Some(""), Some("")),
        "empty is not absent"
    );
}

#[test]
fn outcomes_round_trip() {
    let frame = sample_outcomes();
    let got = outcomes(&frame).expect("parses");
    assert_eq!(got[0], Outcome::Done);
    assert_eq!(
        got[1],
        Outcome::Reply {
            body: b"ok",
            headers: vec![("content-type", "text/plain")]
        }
    );
    let Outcome::Error(e) = &got[2] else {
        panic!("an error: {:?}", got[2])
    };
    assert_eq!(
        (e.code, e.name, e.message, e.data, e.retry),
        (404, "Not Found", "no such order", Some(&b"{\"id\":1}"[..]), false)
    );
    assert!(matches!(
        got[3],
        Outcome::Error(Error {
            retry: true,
            data: None,
            ..
        })
    ));
}

#[test]
fn verdicts_round_trip() {
    let frame = sample_verdicts();
    let got = verdicts(&frame).expect("parses");
    assert_eq!(
        got[0],
        Verdict::Pass {
            headers: vec![("x-user", "ann"), ("x-role", "admin")],
            mark: Some(Guard::Admin)
        }
    );
    assert_eq!(
        got[1],
        Verdict::Pass {
            headers: vec![],
            mark: None
        }
    );
    assert_eq!(
        got[2],
        Verdict::Respond {
            body: b"cached",
            headers: vec![("content-type", "text/plain")]
        }
    );
    let Verdict::Error(e) = &got[3] else {
        panic!("an error: {:?}", got[3])
    };
    assert_eq!((e.code, e.message), (401, "no token"));
    assert_eq!(
        outcomes(&frame).expect_err("verdicts are not outcomes").what,
        "not a batch's outcomes"
    );
    let mut bad = sample_verdicts();
    let mark = 2 + 4 + 1 + 4 + (4 + 6 + 4 + 3) + (4 + 6 + 4 + 5);
    bad[mark] = 3;
    assert_eq!(verdicts(&bad).expect_err("mark").what, "unknown guard mark");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for frame in [sample_batch(), sample_outcomes(), sample_verdicts()] {
        for end in 0..frame.len() {
            let cut = &frame[..end];
            assert!(
                messages(cut).is_err() && outcomes(cut).is_err() && verdicts(cut).is_err(),
                "a frame cut at {end} parsed"
            );
        }
    }
}

#[test]
fn a_corrupted_frame_is_an_error_or_the_same_number_of_items() {
    // Changing any byte never panics. It may still parse (a changed body
    // byte is a different, valid body), but never into a different number
    // of items: the count and every length are checked against the end.
    let (batch, done, verdicted) = (sample_batch(), sample_outcomes(), sample_verdicts());
    for i in 0..batch.len().max(done.len()).max(verdicted.len()) {
        for value in [0x00, 0x01, 0x7f, 0xff] {
            let corrupt = |frame: &[u8]| {
                let mut bad = frame.to_vec();
                if let Some(b) = bad.get_mut(i) {
                    *b = value;
                }
                bad
            };
            if let Ok(m) = messages(&corrupt(&batch)) {
                assert_eq!(m.len(), 3, "byte {i} = {value:#x}");
            }
            if let Ok(o) = outcomes(&corrupt(&done)) {
                assert_eq!(o.len(), 4, "byte {i} = {value:#x}");
            }
            if let Ok(v) = verdicts(&corrupt(&verdicted)) {
                assert_eq!(v.len(), 4, "byte {i} = {value:#x}");
            }
        }
    }
}

#[test]
fn errors_say_what_and_where() {
    let e = messages(&sample_outcomes()).expect_err("outcomes are not messages");
    assert_eq!(
        e,
        FrameError {
            what: "not a batch of messages",
            at: 0
        }
    );
    let mut frame = sample_batch();
    frame[1] = 9;
    assert_eq!(messages(&frame).expect_err("version").what, "unknown layout version");
    let mut frame = sample_batch();
    frame.push(0);
    assert_eq!(
        messages(&frame).expect_err("trailing").what,
        "bytes after the last item"
    );
    let mut frame = sample_batch();
    frame[2] = 4; // claims four messages, holds three
    let e = messages(&frame).expect_err("short");
    assert!(e.to_string().starts_with("malformed batch frame: "), "{e}");
}

/// The ASCII fast path takes exactly what `from_utf8` takes: every
/// length around the eight-byte word, with a non-ASCII character, a
/// stray byte or a cut-off sequence at every position.
#[test]
fn text_agrees_with_from_utf8() {
    let odd: [&[u8]; 6] = [b"\xc3\xa9", "😀".as_bytes(), b"\xff", b"\x80", b"\xe2\x82", b"\xc0\xaf"];
    for len in 0..20 {
        let ascii = vec![b'a'; len];
        assert_eq!(
            crate::read::text(&ascii),
            std::str::from_utf8(&ascii).ok(),
            "{len} ASCII bytes"
        );
        for at in 0..=len {
            for insert in odd {
                let mut bytes = ascii.clone();
                bytes.splice(at..at, insert.iter().copied());
                assert_eq!(crate::read::text(&bytes), std::str::from_utf8(&bytes).ok(), "{bytes:?}");
            }
        }
    }
}

#[test]
fn invalid_utf8_in_a_subject_is_refused() {
    let mut w = Writer::batch(0);
    w.message("ab", b"", [], None, None);
    let mut frame = w.finish();
    let at = frame.len() - 4 - 4 - 2; // the subject's bytes: before body and header lengths
    frame[at] = 0xff;
    assert_eq!(messages(&frame).expect_err("utf-8").what, "a string that is not UTF-8");
}

#[test]
fn a_huge_header_count_is_refused_before_allocating() {
    let mut w = Writer::batch(0);
    w.message("a", b"", [], None, None);
    let mut frame = w.finish();
    let n = frame.len() - 4;
    frame[n..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        messages(&frame).expect_err("count").what,
        "more headers than the frame holds"
    );
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Reads every message or outcome a frame holds, as the host and the
    /// SDK do; what matters is that it ends, with a value or an error.
    fn read_all(bytes: &[u8]) {
        if let Ok(mut r) = Reader::batch(bytes) {
            while let Some(Ok(_)) = r.message() {}
            let _ = r.finish();
        }
        if let Ok(mut r) = Reader::outcomes(bytes) {
            while let Some(Ok(_)) = r.outcome() {}
            let _ = r.finish();
        }
        if let Ok(mut r) = Reader::verdicts(bytes) {
            while let Some(Ok(_)) = r.verdict() {}
            let _ = r.finish();
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            read_all(&bytes);
        }

        #[test]
        fn damaged_frames_never_panic_the_reader(
            at in any::<prop::sample::Index>(),
            with in proptest::collection::vec(any::<u8>(), 0..16),
            cut in any::<prop::sample::Index>(),
        ) {
            for sample in [sample_batch(), sample_outcomes(), sample_verdicts()] {
                let mut bytes = sample.clone();
                let i = at.index(bytes.len());
                bytes.splice(i..(i + with.len()).min(bytes.len()), with.iter().copied());
                read_all(&bytes);
                read_all(&sample[..cut.index(sample.len() + 1)]);
            }
        }
    }
}
