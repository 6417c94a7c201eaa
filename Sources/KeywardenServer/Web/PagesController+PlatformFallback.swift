import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenStore

/// Who pays when a workspace's own keys cannot serve (`platform_fallback`), in plain words on the workspace's pages, and
/// the platform admin's form that sets it (`POST /workspaces/{id}/platform-fallback`). The setting is the platform's
/// money, so only a platform admin changes it, as on the API.
extension PagesController {
    /// The setting that holds for a workspace, in plain words, and where it comes from.
    struct FallbackLine: Encodable {
        /// `never`, `on_failure` or `on_failure_or_budget`.
        let value: String
        /// The setting's short name ("When its own keys fail").
        let label: String
        /// ``PlatformFallback/explanation``.
        let explanation: String
        /// "set for this workspace", "from plan pro" or "the platform's default".
        let source: String
        /// Whether the workspace sets its own (else its plan's or the platform's default holds).
        let isOwn: Bool
        /// The select of the admin's form: the plan's setting first, the workspace's own selected.
        let options: [FallbackOption]
    }

    struct FallbackOption: Encodable {
        let value: String
        let label: String
        let selected: Bool
    }

    /// The value of the form's first option: back to the plan's setting (else the platform's default).
    static let fallbackFromPlan = ""

    /// A setting's short name, as the selects show it.
    static func fallbackLabel(_ fallback: PlatformFallback) -> String {
        switch fallback {
        case .never: "Never"
        case .onFailure: "When its own keys fail"
        case .onFailureOrBudget: "When its own keys fail or their budget is spent"
        }
    }

    /// The line for a workspace given its plan (`nil`: none, or a plan that no longer exists) and the platform's default.
    static func fallbackLine(_ workspace: Workspace, plan: Plan?, platformDefault: PlatformFallback) -> FallbackLine {
        var inherited = (platformDefault, "the platform's default")
        if let plan, let fallback = plan.platformFallback { inherited = (fallback, "from plan \(plan.name)") }
        let effective = workspace.platformFallback.map { ($0, "set for this workspace") } ?? inherited
        let options = [FallbackOption(value: fallbackFromPlan, label: "Plan's setting (\(fallbackLabel(inherited.0)), \(inherited.1))",
                                      selected: workspace.platformFallback == nil)]
            + PlatformFallback.allCases.map { FallbackOption(value: $0.rawValue, label: fallbackLabel($0), selected: $0 == workspace.platformFallback) }
        return FallbackLine(value: effective.0.rawValue, label: fallbackLabel(effective.0), explanation: effective.0.explanation,
                            source: effective.1, isOwn: workspace.platformFallback != nil, options: options)
    }

    /// The line for a workspace, reading its plan.
    func fallbackLine(_ workspace: Workspace) async throws -> FallbackLine {
        var plan: Plan?
        if let name = workspace.plan { plan = try await app.plans.find(name) }
        return Self.fallbackLine(workspace, plan: plan, platformDefault: app.store.configuration.platformFallback)
    }

    func addPlatformFallbackRoutes(to router: Router<KeywardenRequestContext>) {
        router.post("workspaces/:workspace/platform-fallback") { request, context in
            try await page(request) { session in
                let workspaceID = try context.parameters.require("workspace")
                let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                // Who pays when the workspace's own keys cannot is the platform's money: the service refuses anyone else.
                let fromCards = form["back"] == "byok"
                do {
                    guard form["platform_fallback"] != nil else {
                        throw KeywardenError.missing("platform_fallback", "Choose the plan's setting, never, on_failure or on_failure_or_budget.")
                    }
                    try await updateWorkspace(workspaceID, form.only(["platform_fallback"]), session: session, clearing: ["platform_fallback"])
                } catch let error as KeywardenError where error.isAboutInput {
                    if fromCards {
                        return try await byokPage(session, workspaceID: workspaceID, error: error.message, status: APIError(error).status)
                    }
                    return try await workspacesPage(request, session: session, error: error.message, status: APIError(error).status)
                }
                return WebResponse.redirect(fromCards ? "/workspaces/\(Self.pathEscape(workspaceID))/byok?notice=fallback_set#platform-fallback"
                                                      : "/workspaces?notice=fallback_set#ws-\(Self.pathEscape(workspaceID))")
            }
        }
    }
}
