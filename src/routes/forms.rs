//! Small urlencoded (or JSON object) form bodies, read without Rocket's
//! `Form` guard: that guard would compile Rocket's multipart parser into
//! the binary, with every legacy text encoding's tables, for a few fields.

use std::collections::HashMap;

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::request::Request;

use crate::service::Error;

/// Larger than any form of ours.
pub const FORM_LIMIT: u64 = 16 * 1024;

/// The fields of a small form, or why it could not be read.
pub struct SmallForm(pub Result<HashMap<String, String>, Error>);

#[rocket::async_trait]
impl<'r> FromData<'r> for SmallForm {
    type Error = std::convert::Infallible;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let json = req.content_type().is_some_and(|ct| ct.is_json());
        let form = req.content_type().is_some_and(|ct| ct.is_form());
        if !json && !form {
            return data::Outcome::Success(Self(Err(Error::BadForm(
                "send the form as application/x-www-form-urlencoded (or a JSON object)".into(),
            ))));
        }
        let read = data.open(FORM_LIMIT.bytes()).into_string().await;
        let body = match read {
            Ok(body) if body.is_complete() => body.into_inner(),
            Ok(_) => {
                return data::Outcome::Success(Self(Err(Error::BadForm(format!(
                    "the form is larger than {FORM_LIMIT} bytes"
                )))));
            }
            Err(e) => {
                return data::Outcome::Success(Self(Err(Error::BadForm(format!(
                    "the form could not be read: {e}"
                )))));
            }
        };
        let fields = if json {
            parse_json(&body)
        } else {
            Ok(url::form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect())
        };
        data::Outcome::Success(Self(fields))
    }
}

fn parse_json(body: &str) -> Result<HashMap<String, String>, Error> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Error::BadForm(format!("the body is not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| Error::BadForm("the body must be a JSON object".into()))?;
    Ok(object
        .iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
            _ => None,
        })
        .collect())
}
