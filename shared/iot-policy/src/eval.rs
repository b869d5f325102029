//! Evaluation: deny by default, any matching Deny in any document wins, otherwise any matching
//! Allow grants.

use super::condition;
use super::context::{ConnectionContext, Request};
use super::document::{Effect, PolicyDocument, Statement};
use super::error::PolicyError;
use super::glob::{self, Tok};
use super::variables::Resolution;
use serde::Serialize;
use std::fmt;

/// A statement, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    /// Index of the document in the input.
    pub document: usize,
    /// Index of the statement in the document.
    pub statement: usize,
    /// Its `Sid`, if any.
    pub sid: Option<String>,
    /// Its effect.
    pub effect: Effect,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {} statement {}", self.document, self.statement)?;
        if let Some(sid) = &self.sid {
            write!(f, " ({sid})")?;
        }
        write!(f, " [{:?}]", self.effect)
    }
}

/// A statement whose action matched but which did not apply because a variable did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The statement.
    pub statement: StatementRef,
    /// Which variable and why.
    pub reason: String,
}

/// Final outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Some Allow matched and no Deny did.
    Allow,
    /// A Deny matched.
    ExplicitDeny,
    /// Nothing matched.
    ImplicitDeny,
}

/// The decision and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allow / explicit deny / implicit deny.
    pub verdict: Verdict,
    /// The request evaluated.
    pub request: Request,
    /// Allow statements that matched.
    pub allowed_by: Vec<StatementRef>,
    /// Deny statements that matched.
    pub denied_by: Vec<StatementRef>,
    /// Statements skipped because a policy variable did not resolve.
    pub unresolved: Vec<Unresolved>,
}

impl Decision {
    /// True only for [`Verdict::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = match self.verdict {
            Verdict::Allow => "ALLOW",
            Verdict::ExplicitDeny => "DENY (explicit)",
            Verdict::ImplicitDeny => "DENY (implicit: no statement allows it)",
        };
        writeln!(
            f,
            "{v}: {} on {}",
            self.request.action, self.request.resource
        )?;
        for s in &self.denied_by {
            writeln!(f, "  denied by {s}")?;
        }
        for s in &self.allowed_by {
            writeln!(f, "  allowed by {s}")?;
        }
        for u in &self.unresolved {
            writeln!(f, "  not applied: {} — {}", u.statement, u.reason)?;
        }
        Ok(())
    }
}

/// Parsed documents, ready to evaluate many requests.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySet {
    docs: Vec<PolicyDocument>,
}

enum Outcome {
    NoMatch,
    Match,
    Unresolved(String),
}

impl PolicySet {
    /// Parses and validates every document (size limit included). Any error rejects the set.
    pub fn parse(docs: &[&str]) -> Result<PolicySet, PolicyError> {
        let docs = docs
            .iter()
            .enumerate()
            .map(|(i, d)| PolicyDocument::parse(i, d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicySet { docs })
    }

    /// Wraps already parsed documents.
    pub fn from_documents(docs: Vec<PolicyDocument>) -> PolicySet {
        PolicySet { docs }
    }

    /// The documents.
    pub fn documents(&self) -> &[PolicyDocument] {
        &self.docs
    }

    /// Evaluates `request` for the connection `ctx`.
    pub fn evaluate(
        &self,
        request: &Request,
        ctx: &ConnectionContext,
    ) -> Result<Decision, PolicyError> {
        request.validate()?;
        ctx.validate()?;
        let mut decision = Decision {
            verdict: Verdict::ImplicitDeny,
            request: request.clone(),
            allowed_by: Vec::new(),
            denied_by: Vec::new(),
            unresolved: Vec::new(),
        };
        for (di, doc) in self.docs.iter().enumerate() {
            for (si, st) in doc.statements.iter().enumerate() {
                let sref = StatementRef {
                    document: di,
                    statement: si,
                    sid: st.sid.clone(),
                    effect: st.effect,
                };
                match statement_outcome(st, request, ctx, di, si)? {
                    Outcome::NoMatch => {}
                    Outcome::Unresolved(reason) => decision.unresolved.push(Unresolved {
                        statement: sref,
                        reason,
                    }),
                    Outcome::Match => match st.effect {
                        Effect::Allow => decision.allowed_by.push(sref),
                        Effect::Deny => decision.denied_by.push(sref),
                    },
                }
            }
        }
        decision.verdict = if !decision.denied_by.is_empty() {
            Verdict::ExplicitDeny
        } else if !decision.allowed_by.is_empty() {
            Verdict::Allow
        } else {
            Verdict::ImplicitDeny
        };
        Ok(decision)
    }
}

fn resolve_all(
    templates: &[super::variables::Template],
    ctx: &ConnectionContext,
    doc: usize,
    path: &str,
) -> Result<Result<Vec<Vec<Tok>>, String>, PolicyError> {
    let mut out = Vec::new();
    for t in templates {
        match t.resolve(ctx) {
            Resolution::Patterns(p) => out.extend(p),
            Resolution::Unresolved(reason) => return Ok(Err(reason)),
            Resolution::TooMany => {
                return Err(PolicyError::TooManyExpansions {
                    doc,
                    path: path.to_owned(),
                })
            }
        }
    }
    Ok(Ok(out))
}

fn statement_outcome(
    st: &Statement,
    request: &Request,
    ctx: &ConnectionContext,
    doc: usize,
    si: usize,
) -> Result<Outcome, PolicyError> {
    if !st.action.covers(&request.action) {
        return Ok(Outcome::NoMatch);
    }
    let resources = match resolve_all(
        &st.resource.items,
        ctx,
        doc,
        &format!("Statement[{si}].Resource"),
    )? {
        Ok(p) => p,
        Err(reason) => return Ok(Outcome::Unresolved(reason)),
    };
    let mut cond_values = Vec::with_capacity(st.conditions.len());
    for c in &st.conditions {
        match resolve_all(&c.values, ctx, doc, &format!("Statement[{si}].Condition"))? {
            Ok(p) => cond_values.push(p),
            Err(reason) => return Ok(Outcome::Unresolved(reason)),
        }
    }
    let listed = resources
        .iter()
        .any(|p| glob::matches(p, &request.resource, false));
    if listed == st.resource.negated {
        return Ok(Outcome::NoMatch);
    }
    for (c, values) in st.conditions.iter().zip(&cond_values) {
        if !condition::evaluate(c, values, ctx)? {
            return Ok(Outcome::NoMatch);
        }
    }
    Ok(Outcome::Match)
}
