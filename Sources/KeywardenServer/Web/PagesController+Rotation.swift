import Foundation
import Hummingbird
import KeywardenApp
import KeywardenCore
import KeywardenProviders
import KeywardenStore

/// The guided rotation of a key, as a panel on the key's page (a workspace key) or on the card's rotation page (the
/// platform's key of a provider): the steps, where it stands, and the next action.
struct RotationPanel: Encodable {
    struct Step: Encodable {
        let label: String
        let state: String
    }
    let action: String
    let steps: [Step]
    let stagedHint: String?
    let stagedStatus: String?
    let stagedTested: Bool
    let previousHint: String?
    let previousUntil: String?
    let note: String?
    let noteClass: String
    let canTest: Bool
    let graceHours: Int

    /// Where `credential`'s rotation stands: add the new key → test → promote → the old key as fallback → removed.
    init(_ credential: Credential, action: String, note: PagesController.RowNote?, canTest: Bool) {
        let l = credential.lifecycle
        let staged = l.staged
        let tested = staged?.status == .valid
        let stage = staged != nil ? (tested ? 3 : 2) : (l.previous != nil ? 4 : 1)
        let labels = ["Add the new key", "Test it", "Promote it", "Old key as fallback", "Remove the old key"]
        self.action = action
        steps = labels.enumerated().map { index, label in
            Step(label: label, state: index + 1 < stage ? "done" : index + 1 == stage ? "current" : "todo")
        }
        stagedHint = staged?.hint
        stagedStatus = staged.map { $0.status.rawValue.replacingOccurrences(of: "_", with: " ") }
        stagedTested = tested
        previousHint = l.previous?.hint
        previousUntil = l.previous.map { PagesController.shortTime($0.until) }
        self.note = note?.text ?? staged?.message
        noteClass = (note?.good ?? tested) ? "ok" : "bad"
        self.canTest = canTest
        graceHours = KeyRotationService.defaultGraceHours
    }
}

extension PagesController {
    /// Carries out one step of a rotation posted from a page: what to say, and a test's verdict for the panel.
    func rotationStep(_ step: String, _ reference: KeyRotationService.Reference, form: WebForm, principal: Principal) async throws
        -> (notice: String?, note: RowNote?) {
        // Each step is the API's: refused before its form is read, then decoded into the API's request.
        try reference.authorize(principal, step == "test" ? .keysTest : .keysUpdate)
        switch step {
        case "stage":
            _ = try await form.decode(KeyRotationController.StageBody.self).stage(reference, in: app.keyRotation, principal: principal)
            return ("New key staged. Test it, then promote it.", nil)
        case "test":
            let (result, credential) = try await verification.testStaged(reference, principal: principal)
            return (nil, RowNote(keyID: credential.id, text: Self.describe(result), good: result.status == .valid))
        case "promote":
            let body = try form.decode(KeyRotationController.PromoteBody.self)
            let key = try await app.keyRotation.promote(reference, graceHours: body.graceHours, force: body.force ?? false, principal: principal)
            return (key.lifecycle.previous.map { "New key promoted. The old key serves as its fallback until \(Self.shortTime($0.until))." }
                ?? "New key promoted; the old key is removed.", nil)
        case "finish":
            _ = try await app.keyRotation.finish(reference, principal: principal)
            return ("Rotation finished: the old key is removed.", nil)
        default:
            _ = try await app.keyRotation.cancel(reference, principal: principal)
            return ("Staged key discarded; the current key keeps serving.", nil)
        }
    }

    /// The platform's key of a provider, rotated from its own page (platform admins).
    struct CardRotationPage: Encodable {
        let providerID: String
        let providerName: String
        let hint: String
        let status: String
        let badgeClass: String
        let lifecycle: String?
        let rotation: RotationPanel
    }

    func addCardRotationRoutes(to router: Router<KeywardenRequestContext>) {
        router.get("platform/providers/:provider/rotation") { request, context in
            try await page(request) { session in
                try await cardRotationPage(session, providerID: try context.parameters.require("provider"))
            }
        }
        for step in ["stage", "test", "promote", "finish", "cancel"] {
            router.post("platform/providers/:provider/rotation/\(step)") { request, context in
                try await page(request) { session in
                    let providerID = try context.parameters.require("provider")
                    let form = try await WebForm.read(request, context: context, csrf: session.csrf)
                    do {
                        let outcome = try await rotationStep(step, .platform(providerID: providerID), form: form, principal: session.principal)
                        return try await cardRotationPage(session, providerID: providerID, notice: outcome.notice, note: outcome.note)
                    } catch let error as KeywardenError where error.isAboutInput {
                        return try await cardRotationPage(session, providerID: providerID, error: error.message, status: APIError(error).status)
                    }
                }
            }
        }
    }

    func cardRotationPage(_ session: WebSession, providerID: String, notice: String? = nil, error: String? = nil, note: RowNote? = nil,
                          status: HTTPResponse.Status = .ok) async throws -> Response {
        let card = try await app.platformCards.card(providerID, principal: session.principal)
        guard let credential = card.credential, card.hasKey else {
            throw KeywardenError(.conflict, code: "key_required", message: "Add an API key before rotating it.", field: "api_key")
        }
        let content = CardRotationPage(
            providerID: card.provider.id, providerName: card.provider.displayName, hint: credential.hint,
            status: card.status.rawValue.replacingOccurrences(of: "_", with: " "), badgeClass: Self.badgeClass(card.status),
            lifecycle: Self.lifecycleNote(credential.lifecycle)?.text,
            rotation: RotationPanel(credential, action: "/platform/providers/\(card.provider.id)/rotation", note: note,
                                    canTest: card.provider.verification.available)
        )
        let chrome = try await chrome(session, title: "Rotate the \(card.provider.displayName) key", nav: "navProviders", workspaceID: nil,
                                      notice: notice, error: error)
        return WebResponse.page("card-rotation", PageView(chrome: chrome, content: content), status: status)
    }
}
