// The Hono context every route sees: the Worker's bindings and per-request values.
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** The application whose key authorised this request, when keys are in use. */
    appId?: string;
    /** The key that authorised this request. */
    keyId?: string;
  };
}
