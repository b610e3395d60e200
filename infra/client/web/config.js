// Where the app finds the API. Empty: the page's own origin (the local stack serves both).
// Hosting these files elsewhere (S3 + CloudFront, any static host), set apiUrl to the stack's
// ApiUrl output, e.g. "https://abc123.execute-api.eu-west-1.amazonaws.com/v1", and add this
// site's origin to the `corsAllowedOrigins` context of the stack. `?api=<url>` overrides it.
export default {
  apiUrl: "",
};
