-- The alert mail policy's state per rule and stream (metrics/alert-state.ts), stored by the metrics worker after the
-- mails it accounts for went out, so a restarted worker keeps its cooldowns and held firings, and still sends the
-- resolved mail of a condition that was open when its predecessor stopped.
CREATE TABLE alert_policy_state (
    key             text        PRIMARY KEY,  -- rule|exchange|market|symbol
    active          boolean     NOT NULL,
    cooldown_until  timestamptz,              -- NULL: no mail sent yet
    held            jsonb       NOT NULL DEFAULT '[]',  -- firings waiting for the next digest
    updated_at      timestamptz NOT NULL DEFAULT now()
);
