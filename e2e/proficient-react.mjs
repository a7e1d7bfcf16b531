// A stand-in for @proficient/react 0.23.0's InteractionView (not on npm), as the module source an
// app imports, for the Vite and Next.js tests alike. It behaves as the real one does (its source
// is AGPL: this is written from its behaviour, not copied): useApi asks userHmac() whenever it has
// no HMAC cached and keeps the first one for good, even when userExternalId changes; the view's
// two loading steps each ask before either answer is cached; the agent's step awaits the HMAC
// outside its try, so a rejection leaves "Loading agent..." and an uncaught error. What
// Proficient's API would receive is recorded in globalThis.proficientRequests.
export const interactionViewSource = `"use client";
import { createElement, useCallback, useEffect, useRef, useState } from "react";
globalThis.proficientRequests = [];
function useApi({ apiKey, userExternalId, userHmac }) {
  const cachedHmacRef = useRef(undefined);
  const getApi = useCallback(async () => {
    if (!cachedHmacRef.current) {
      cachedHmacRef.current = typeof userHmac === "function" ? await userHmac() : userHmac;
    }
    const headers = { apiKey, userExternalId, userHmac: cachedHmacRef.current };
    return { request: async (what) => (globalThis.proficientRequests.push({ what, ...headers }), headers) };
  }, [apiKey, userExternalId, userHmac]);
  return { getApi };
}
export function InteractionView({ apiKey, agentId, userExternalId, userHmac }) {
  if (typeof userHmac !== "string" && typeof userHmac !== "function") throw new Error("userHmac must be a string or a function");
  const { getApi } = useApi({ apiKey, userExternalId, userHmac });
  const [agent, setAgent] = useState({ status: "nil" });
  const [interactions, setInteractions] = useState(null);
  useEffect(() => {
    (async () => {
      setAgent({ status: "loading" });
      const api = await getApi();
      try {
        setAgent({ status: "success", sent: await api.request("agent") });
      } catch {
        setAgent({ status: "error" });
      }
    })();
  }, [agentId, getApi]);
  useEffect(() => {
    (async () => {
      try {
        const api = await getApi();
        setInteractions(await api.request("interactions"));
      } catch (e) {
        console.error("Cannot load interactions for agent", agentId);
      }
    })();
  }, [agentId, getApi]);
  if (agent.status !== "success") {
    return createElement("p", { id: "proficient-loading" },
      agent.status === "error" ? "An unknown error occurred while loading agent details." : "Loading agent...");
  }
  return createElement("output", { id: "view", "data-api-key": String(agent.sent.apiKey), "data-agent": agentId,
    "data-uid": agent.sent.userExternalId, "data-hmac": agent.sent.userHmac, "data-interactions-hmac": interactions?.userHmac ?? "" });
}
`;
