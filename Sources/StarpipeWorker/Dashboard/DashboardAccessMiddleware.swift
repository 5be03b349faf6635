import Hummingbird

/// Refuses (401) every request that does not carry the token when one is required. `?token=` on a page request is
/// accepted once and answered with the cookie, so the browser's later requests carry it without the URL.
struct DashboardAccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: DashboardAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard access.requiresToken else { return try await next(request, context) }
        if access.admits(DashboardAccess.bearer(request.headers[.authorization]))
            || access.admits(request.cookies[DashboardAccess.cookieName]?.value) {
            return try await next(request, context)
        }
        if let query = request.uri.queryParameters["token"], access.admits(String(query)) {
            var response = try await next(request, context)
            response.headers[.setCookie] = "\(DashboardAccess.cookieName)=\(query); Path=/; HttpOnly; SameSite=Strict"
            return response
        }
        return DashboardServer.response(.unauthorized, "a token is required: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
                                        contentType: "text/plain; charset=utf-8",
                                        headers: [.wwwAuthenticate: #"Bearer realm="starpipe dashboard""#])
    }
}
