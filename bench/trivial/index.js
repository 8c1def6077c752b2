// Trivial Worker: what the local runtime does per request when the Worker does nothing.
export default {
  fetch() {
    return new Response("ok");
  },
};
