//! Transport-independent HTTP plumbing: what every route shares whichever door a request
//! came through (a Vercel function, the local server, a test). The answers' headers
//! (`response`), the one error type (`error`), bounded bodies (`body`), JSON (`json`).

pub mod body;
pub mod error;
pub mod json;
pub mod response;

pub use body::{read_body, BODY_LIMIT};
pub use error::ApiError;
pub use json::{json, json_status};
pub use response::{preflight, response, text_ok, Request, Response, CACHE_PUBLIC};
