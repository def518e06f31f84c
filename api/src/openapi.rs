//! The OpenAPI document, generated from the handlers' annotations so it cannot drift
//! from the routes.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::{
    AttemptList, AttemptView, CreateTaskMultipart, CreateTaskRequest, FollowUpRequest, InputView,
    LegacyCreateForm, LegacyCreated, LegacyStatus, PullRequestRequest, PullRequestView, RunList,
    RunView, TaskList, TaskView,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{blobs, legacy, ops, tasks};
use crate::web;
use crate::web::event_ticket::EventTicket;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agent-rs service",
        description = "Submit coding tasks (a git URL or a zip and an instruction), follow them live, fetch the diff."
    ),
    paths(
        tasks::create_task,
        tasks::list_tasks,
        tasks::updates::task_updates,
        web::event_ticket::issue_updates_ticket,
        tasks::get_task,
        tasks::cancel_task,
        tasks::pull_request::retry_pull_request,
        tasks::events::task_events,
        web::event_ticket::issue_ticket,
        tasks::get_artifact,
        tasks::runs::post_message,
        tasks::runs::list_runs,
        tasks::best_of::list_attempts,
        tasks::runs::get_run_artifact,
        tasks::events::run_events,
        legacy::create_legacy,
        legacy::legacy_status,
        blobs::get_blob,
        blobs::put_blob,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    components(schemas(
        CreateTaskRequest,
        CreateTaskMultipart,
        TaskView,
        InputView,
        PullRequestRequest,
        PullRequestView,
        TaskList,
        FollowUpRequest,
        RunView,
        RunList,
        AttemptView,
        AttemptList,
        LegacyCreateForm,
        LegacyCreated,
        LegacyStatus,
        ErrorBody,
        ErrorDetail,
        EventTicket,
    )),
    modifiers(&BearerAuth, &FormPartNames),
    tags(
        (name = "tasks", description = "Tasks: submit, read, follow, cancel, artifacts"),
        (name = "legacy", description = "The original API, kept for existing clients"),
        (name = "blobs", description = "Signed URLs of the local blob store"),
        (name = "ops", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The original form takes parts it does not know (and ignores them), but a part's name
/// travels in a header, where control characters cannot: the multipart reader refuses
/// such a body whole (400). The schema says so, as the names' pattern.
struct FormPartNames;

impl Modify for FormPartNames {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(form))) = components.schemas.get_mut("LegacyCreateForm")
        {
            let names = ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[^\x00-\x1f\x7f]*$"))
                .build();
            form.property_names = Some(Box::new(Schema::Object(names)));
        }
    }
}
