//! `enable_http3`: blackbox_exporter 0.28's HTTP/3 switch. `false`, its
//! default, means what lookout does and is accepted; `true` is refused at
//! load naming the key and line, as lookout speaks no HTTP/3 (a QUIC stack
//! would cost about 620 KiB of the binary's budget: see the README).

use std::fmt;

use serde::{
    de::{self, Visitor},
    Deserializer,
};

/// Reads `enable_http3`, refusing `true`.
pub(super) fn only_false<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct OnlyFalse;
    impl Visitor<'_> for OnlyFalse {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean")
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
            if value {
                return Err(E::custom(
                    "`enable_http3: true` asks for HTTP/3, which lookout does not support (false, the default, is accepted)",
                ));
            }
            Ok(false)
        }
    }
    deserializer.deserialize_bool(OnlyFalse)
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn enable_http3_may_say_false_but_not_true() {
        let module = |value: &str| {
            parse(&format!(
                "modules:\n  m:\n    prober: http\n    http:\n      enable_http3: {value}\n"
            ))
        };
        assert!(!module("false").unwrap().modules["m"].http.enable_http3);
        let err = module("true").unwrap_err();
        assert!(err.contains("modules.m.http.enable_http3"), "{err}");
        assert!(
            err.contains("does not support") && err.contains("line 5"),
            "{err}"
        );
        assert!(module("maybe").is_err());
    }

    #[test]
    fn cel_checks_are_refused_by_name() {
        for key in [
            "fail_if_body_json_matches_cel",
            "fail_if_body_json_not_matches_cel",
        ] {
            let err = parse(&format!(
                "modules:\n  m:\n    prober: http\n    http:\n      {key}: 'body.ok == true'\n"
            ))
            .unwrap_err();
            assert!(
                err.contains(&format!(
                    "`{key}` is a blackbox_exporter option that lookout does not support"
                )),
                "{err}"
            );
            assert!(err.contains("line 5"), "{err}");
        }
    }
}
