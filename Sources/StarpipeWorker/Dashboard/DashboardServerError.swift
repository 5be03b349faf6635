/// Why the dashboard could not start.
public struct DashboardServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
