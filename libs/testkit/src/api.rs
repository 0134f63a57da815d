//! The platform's HTTP API as tests call it: create, update, delete and read, checking the
//! contract's status codes and content types on the way.

use events::{Document, DocumentId, mime};
use uuid::Uuid;

/// Where the producer's and the reader's `/documents` live (directly, or through a
/// gateway).
#[derive(Debug, Clone)]
pub struct Api {
    pub http: reqwest::Client,
    /// e.g. `http://127.0.0.1:8083` or `http://127.0.0.1:8080/producer`
    pub producer: String,
    /// e.g. `http://127.0.0.1:8082` or `http://127.0.0.1:8080/reader`
    pub reader: String,
}

impl Api {
    pub fn new(producer: &str, reader: &str) -> Self {
        Self {
            http: crate::http(),
            producer: producer.trim_end_matches('/').to_owned(),
            reader: reader.trim_end_matches('/').to_owned(),
        }
    }

    /// Creates a document; asserts 201 with the id body; returns the id.
    pub async fn create(&self, body: &str) -> Uuid {
        let response = self
            .http
            .post(format!("{}/documents", self.producer))
            .header("content-type", mime::CREATE_DOCUMENT)
            .body(body.to_owned())
            .send()
            .await
            .expect("create request");
        assert_eq!(response.status(), 201, "create");
        assert_eq!(response.headers()["content-type"], mime::DOCUMENT_ID);
        response.json::<DocumentId>().await.expect("id body").id
    }

    /// Updates a document; asserts 200 with an empty body.
    pub async fn update(&self, body: &str) {
        let response = self
            .http
            .put(format!("{}/documents", self.producer))
            .header("content-type", mime::UPDATE_DOCUMENT)
            .body(body.to_owned())
            .send()
            .await
            .expect("update request");
        assert_eq!(response.status(), 200, "update");
        assert_eq!(response.text().await.expect("body"), "");
    }

    /// Deletes a document; asserts 204.
    pub async fn delete(&self, id: Uuid) {
        let response = self
            .http
            .delete(format!("{}/documents/{id}", self.producer))
            .send()
            .await
            .expect("delete request");
        assert_eq!(response.status(), 204, "delete");
    }

    /// The document, once the reader serves it (for `eventually`).
    pub async fn read_document(&self, id: Uuid) -> Option<Document> {
        self.read(id).await.flatten()
    }

    /// The document as the reader serves it now: `Some(None)` for 404, `None` when the
    /// reader did not answer 200 or 404 (yet), so that `eventually` tries again.
    pub async fn read(&self, id: Uuid) -> Option<Option<Document>> {
        let response = self
            .http
            .get(format!("{}/documents/{id}", self.reader))
            .send()
            .await
            .ok()?;
        match response.status().as_u16() {
            200 => {
                assert_eq!(response.headers()["content-type"], mime::DOCUMENT);
                Some(Some(response.json().await.ok()?))
            }
            404 => Some(None),
            _ => None,
        }
    }
}
