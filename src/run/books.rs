//! The reads of the target's public APIs ([`Book`]: the Provider Directory and the drug
//! formulary; where each is and how it is validated is [`super::records::Books`]): which
//! token a read carries (none, the target's, or the member's), and each type's read of every
//! instance, made once and shared by every check, as the Patient Access searches are.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::StepFailure;
use super::context::RunContext;
use crate::infra::secret::Secret;
use crate::payer::fhir::{Paging, SearchResult};
use crate::payer::public::Book;

impl RunContext {
    /// The token reads of `book` carry: the target's, the member's, or none.
    pub async fn book_token(&self, book: Book) -> Result<Option<Secret>, StepFailure> {
        let api = self.books.get(book)?;
        if api.member_token {
            return self.access_token().await.map(Some);
        }
        Ok(api.token.clone())
    }

    /// Every `kind` of `book`, every page, validated as it arrives: run once and shared.
    pub async fn book_search(&self, book: Book, kind: &str) -> Arc<SearchResult> {
        let api = match self.books.get(book) {
            Ok(api) => api,
            Err(failure) => return Arc::new(super::searches::not_read(kind, failure)),
        };
        let cell = api.searches.cell(kind).await;
        let made = cell.get_or_init(|| async {
            let token = match self.book_token(book).await {
                Ok(token) => token,
                Err(failure) => return Arc::new(super::searches::not_read(kind, failure)),
            };
            let bar = api.searches.progress_bar(&format!("{} {kind}", book.key()));
            let result = crate::payer::fhir::search_with(
                &self.http,
                &api.base,
                kind,
                &[],
                token.as_ref(),
                Paging {
                    page_size: self.target.page_size,
                    page_cap: self.target.page_cap,
                },
                &api.validator,
                |pages, resources, _| {
                    bar.set_message(format!("{pages} pages, {resources} resources"))
                },
            )
            .await;
            bar.finish_and_clear();
            Arc::new(result)
        });
        Arc::clone(made.await)
    }

    /// Every type of `book`, read (what a reference between them resolves against).
    pub async fn book_searches(&self, book: Book) -> BTreeMap<String, Arc<SearchResult>> {
        let mut all = BTreeMap::new();
        for kind in book.types() {
            let result = self.book_search(book, &kind).await;
            all.insert(kind, result);
        }
        all
    }

    /// A search of `kind` at `book` with `query`: every page (at most
    /// [`super::searches::QUERY_PAGE_CAP`]) and whether all were read.
    pub async fn book_query(
        &self,
        book: Book,
        kind: &str,
        query: &[(&str, &str)],
        context: &str,
    ) -> Result<(Vec<serde_json::Value>, bool), StepFailure> {
        let api = self.books.get(book)?;
        let token = self.book_token(book).await?;
        self.query_pages(&api.base, token.as_ref(), kind, query, context)
            .await
    }

    /// `GET {book}/{kind}/{id}`, with the book's token.
    pub async fn book_read(
        &self,
        book: Book,
        kind: &str,
        id: &str,
        context: &str,
    ) -> Result<crate::payer::http::Response, StepFailure> {
        let api = self.books.get(book)?;
        let token = self.book_token(book).await?;
        crate::payer::fhir::read(
            &self.http,
            &api.base,
            &crate::payer::fhir::resource_path(kind, id),
            token.as_ref(),
            context,
        )
        .await
        .map_err(|e| StepFailure::from_http(&e))
    }

    /// `book`'s `kind/id` as JSON, read once (with the book's token) and kept: what the
    /// searches take values from. `None` when it does not read as a resource.
    pub async fn book_resource(
        &self,
        book: Book,
        kind: &str,
        id: &str,
    ) -> Result<Option<Arc<serde_json::Value>>, StepFailure> {
        let api = self.books.get(book)?;
        let key = format!("{kind}/{id}");
        let known = api
            .read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(known) = known {
            return Ok(known);
        }
        let response = self
            .book_read(book, kind, id, &format!("{}: read {key}", book.title()))
            .await?;
        let resource = (response.status == 200)
            .then(|| serde_json::from_slice::<serde_json::Value>(&response.body).ok())
            .flatten()
            .map(Arc::new);
        api.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, resource.clone());
        Ok(resource)
    }
}
