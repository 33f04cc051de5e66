/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment AccountFields on Account {\n    id\n    username\n    fullName\n    email\n    role\n    active\n    createdAt\n  }\n": typeof types.AccountFieldsFragmentDoc,
    "\n  fragment TaskFields on Task {\n    id\n    title\n    jiraId\n    description\n    status\n    createdAt\n    completedAt\n    assignee {\n      id\n      username\n      fullName\n    }\n    price {\n      fee\n      reward\n    }\n  }\n": typeof types.TaskFieldsFragmentDoc,
    "\n  fragment EntryFields on LedgerEntry {\n    id\n    type\n    amount\n    balanceAfter\n    description\n    occurredAt\n    day\n    task {\n      id\n      title\n      jiraId\n      description\n    }\n  }\n": typeof types.EntryFieldsFragmentDoc,
    "\n  fragment AuthFields on AuthPayload {\n    token\n    expiresAt\n    account {\n      ...AccountFields\n    }\n  }\n": typeof types.AuthFieldsFragmentDoc,
    "\n  mutation Login($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      ...AuthFields\n    }\n  }\n": typeof types.LoginDocument,
    "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) {\n      ...AuthFields\n    }\n  }\n": typeof types.SignUpDocument,
    "\n  mutation RefreshSession {\n    refreshSession {\n      ...AuthFields\n    }\n  }\n": typeof types.RefreshSessionDocument,
    "\n  mutation Logout {\n    logout\n  }\n": typeof types.LogoutDocument,
    "\n  query Me {\n    me {\n      ...AccountFields\n    }\n  }\n": typeof types.MeDocument,
    "\n  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {\n    changePassword(currentPassword: $currentPassword, newPassword: $newPassword)\n  }\n": typeof types.ChangePasswordDocument,
    "\n  mutation UpdateProfile($fullName: String, $email: String) {\n    updateProfile(fullName: $fullName, email: $email) {\n      ...AccountFields\n    }\n  }\n": typeof types.UpdateProfileDocument,
    "\n  query Tasks($first: Int, $after: String, $status: TaskStatus, $assigneeId: ID) {\n    tasks(first: $first, after: $after, status: $status, assigneeId: $assigneeId) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n": typeof types.TasksDocument,
    "\n  query MyTasks($first: Int, $after: String, $status: TaskStatus) {\n    myTasks(first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n": typeof types.MyTasksDocument,
    "\n  query SearchTasks($search: String!, $first: Int, $after: String, $status: TaskStatus) {\n    searchTasks(search: $search, first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n": typeof types.SearchTasksDocument,
    "\n  query Assignees {\n    accounts(first: 100) {\n      edges {\n        node {\n          id\n          username\n          fullName\n          role\n          active\n        }\n      }\n    }\n  }\n": typeof types.AssigneesDocument,
    "\n  mutation CreateTask($input: CreateTaskInput!) {\n    createTask(input: $input) {\n      ...TaskFields\n    }\n  }\n": typeof types.CreateTaskDocument,
    "\n  mutation CompleteTask($id: ID!) {\n    completeTask(id: $id) {\n      ...TaskFields\n    }\n  }\n": typeof types.CompleteTaskDocument,
    "\n  mutation ShuffleTasks {\n    shuffleTasks {\n      reassigned\n    }\n  }\n": typeof types.ShuffleTasksDocument,
    "\n  subscription TaskChanged($assigneeId: ID) {\n    taskChanged(assigneeId: $assigneeId) {\n      kind\n      occurredAt\n      previousAssignee {\n        id\n      }\n      task {\n        ...TaskFields\n      }\n    }\n  }\n": typeof types.TaskChangedDocument,
    "\n  query BillingAccount($accountId: ID!, $first: Int, $after: String, $day: Date, $from: Date!, $to: Date!) {\n    billingAccount(accountId: $accountId) {\n      account {\n        ...AccountFields\n      }\n      balance\n      earnedToday\n      entries(first: $first, after: $after, day: $day) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        edges {\n          node {\n            ...EntryFields\n          }\n        }\n      }\n      days(from: $from, to: $to) {\n        date\n        earned\n        paidOut\n      }\n      payments(first: 20) {\n        id\n        amount\n        day\n        createdAt\n        emailSent\n      }\n    }\n  }\n": typeof types.BillingAccountDocument,
    "\n  subscription BalanceChanged($accountId: ID) {\n    balanceChanged(accountId: $accountId) {\n      accountId\n      balance\n      entry {\n        ...EntryFields\n      }\n    }\n  }\n": typeof types.BalanceChangedDocument,
    "\n  query BillingAccounts($first: Int, $after: String) {\n    billingAccounts(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          balance\n          earnedToday\n          account {\n            id\n            username\n            fullName\n            role\n            active\n          }\n        }\n      }\n    }\n  }\n": typeof types.BillingAccountsDocument,
    "\n  query ManagementEarnings($from: Date!, $to: Date!) {\n    managementEarnings(from: $from, to: $to) {\n      date\n      managementEarnings\n    }\n  }\n": typeof types.ManagementEarningsDocument,
    "\n  mutation CloseBillingDay {\n    closeBillingDay {\n      day\n      paidAccounts\n      totalPaid\n    }\n  }\n": typeof types.CloseBillingDayDocument,
    "\n  query AnalyticsSummary($date: Date) {\n    analyticsSummary(date: $date) {\n      date\n      managementEarnings\n      negativeBalanceCount\n    }\n  }\n": typeof types.AnalyticsSummaryDocument,
    "\n  query MostExpensive($from: Date!, $to: Date!, $period: Period!) {\n    mostExpensiveTask(from: $from, to: $to) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n    mostExpensiveTasks(from: $from, to: $to, period: $period) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n  }\n": typeof types.MostExpensiveDocument,
    "\n  query Accounts($first: Int, $after: String, $role: Role) {\n    accounts(first: $first, after: $after, role: $role) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n": typeof types.AccountsDocument,
    "\n  query SearchAccounts($search: String!, $first: Int, $after: String) {\n    searchAccounts(search: $search, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n": typeof types.SearchAccountsDocument,
    "\n  mutation CreateAccount($input: CreateAccountInput!) {\n    createAccount(input: $input) {\n      ...AccountFields\n    }\n  }\n": typeof types.CreateAccountDocument,
    "\n  mutation ChangeRole($accountId: ID!, $role: Role!) {\n    changeRole(accountId: $accountId, role: $role) {\n      ...AccountFields\n    }\n  }\n": typeof types.ChangeRoleDocument,
    "\n  mutation DeactivateAccount($accountId: ID!) {\n    deactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n": typeof types.DeactivateAccountDocument,
    "\n  mutation ReactivateAccount($accountId: ID!) {\n    reactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n": typeof types.ReactivateAccountDocument,
};
const documents: Documents = {
    "\n  fragment AccountFields on Account {\n    id\n    username\n    fullName\n    email\n    role\n    active\n    createdAt\n  }\n": types.AccountFieldsFragmentDoc,
    "\n  fragment TaskFields on Task {\n    id\n    title\n    jiraId\n    description\n    status\n    createdAt\n    completedAt\n    assignee {\n      id\n      username\n      fullName\n    }\n    price {\n      fee\n      reward\n    }\n  }\n": types.TaskFieldsFragmentDoc,
    "\n  fragment EntryFields on LedgerEntry {\n    id\n    type\n    amount\n    balanceAfter\n    description\n    occurredAt\n    day\n    task {\n      id\n      title\n      jiraId\n      description\n    }\n  }\n": types.EntryFieldsFragmentDoc,
    "\n  fragment AuthFields on AuthPayload {\n    token\n    expiresAt\n    account {\n      ...AccountFields\n    }\n  }\n": types.AuthFieldsFragmentDoc,
    "\n  mutation Login($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      ...AuthFields\n    }\n  }\n": types.LoginDocument,
    "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) {\n      ...AuthFields\n    }\n  }\n": types.SignUpDocument,
    "\n  mutation RefreshSession {\n    refreshSession {\n      ...AuthFields\n    }\n  }\n": types.RefreshSessionDocument,
    "\n  mutation Logout {\n    logout\n  }\n": types.LogoutDocument,
    "\n  query Me {\n    me {\n      ...AccountFields\n    }\n  }\n": types.MeDocument,
    "\n  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {\n    changePassword(currentPassword: $currentPassword, newPassword: $newPassword)\n  }\n": types.ChangePasswordDocument,
    "\n  mutation UpdateProfile($fullName: String, $email: String) {\n    updateProfile(fullName: $fullName, email: $email) {\n      ...AccountFields\n    }\n  }\n": types.UpdateProfileDocument,
    "\n  query Tasks($first: Int, $after: String, $status: TaskStatus, $assigneeId: ID) {\n    tasks(first: $first, after: $after, status: $status, assigneeId: $assigneeId) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n": types.TasksDocument,
    "\n  query MyTasks($first: Int, $after: String, $status: TaskStatus) {\n    myTasks(first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n": types.MyTasksDocument,
    "\n  query SearchTasks($search: String!, $first: Int, $after: String, $status: TaskStatus) {\n    searchTasks(search: $search, first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n": types.SearchTasksDocument,
    "\n  query Assignees {\n    accounts(first: 100) {\n      edges {\n        node {\n          id\n          username\n          fullName\n          role\n          active\n        }\n      }\n    }\n  }\n": types.AssigneesDocument,
    "\n  mutation CreateTask($input: CreateTaskInput!) {\n    createTask(input: $input) {\n      ...TaskFields\n    }\n  }\n": types.CreateTaskDocument,
    "\n  mutation CompleteTask($id: ID!) {\n    completeTask(id: $id) {\n      ...TaskFields\n    }\n  }\n": types.CompleteTaskDocument,
    "\n  mutation ShuffleTasks {\n    shuffleTasks {\n      reassigned\n    }\n  }\n": types.ShuffleTasksDocument,
    "\n  subscription TaskChanged($assigneeId: ID) {\n    taskChanged(assigneeId: $assigneeId) {\n      kind\n      occurredAt\n      previousAssignee {\n        id\n      }\n      task {\n        ...TaskFields\n      }\n    }\n  }\n": types.TaskChangedDocument,
    "\n  query BillingAccount($accountId: ID!, $first: Int, $after: String, $day: Date, $from: Date!, $to: Date!) {\n    billingAccount(accountId: $accountId) {\n      account {\n        ...AccountFields\n      }\n      balance\n      earnedToday\n      entries(first: $first, after: $after, day: $day) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        edges {\n          node {\n            ...EntryFields\n          }\n        }\n      }\n      days(from: $from, to: $to) {\n        date\n        earned\n        paidOut\n      }\n      payments(first: 20) {\n        id\n        amount\n        day\n        createdAt\n        emailSent\n      }\n    }\n  }\n": types.BillingAccountDocument,
    "\n  subscription BalanceChanged($accountId: ID) {\n    balanceChanged(accountId: $accountId) {\n      accountId\n      balance\n      entry {\n        ...EntryFields\n      }\n    }\n  }\n": types.BalanceChangedDocument,
    "\n  query BillingAccounts($first: Int, $after: String) {\n    billingAccounts(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          balance\n          earnedToday\n          account {\n            id\n            username\n            fullName\n            role\n            active\n          }\n        }\n      }\n    }\n  }\n": types.BillingAccountsDocument,
    "\n  query ManagementEarnings($from: Date!, $to: Date!) {\n    managementEarnings(from: $from, to: $to) {\n      date\n      managementEarnings\n    }\n  }\n": types.ManagementEarningsDocument,
    "\n  mutation CloseBillingDay {\n    closeBillingDay {\n      day\n      paidAccounts\n      totalPaid\n    }\n  }\n": types.CloseBillingDayDocument,
    "\n  query AnalyticsSummary($date: Date) {\n    analyticsSummary(date: $date) {\n      date\n      managementEarnings\n      negativeBalanceCount\n    }\n  }\n": types.AnalyticsSummaryDocument,
    "\n  query MostExpensive($from: Date!, $to: Date!, $period: Period!) {\n    mostExpensiveTask(from: $from, to: $to) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n    mostExpensiveTasks(from: $from, to: $to, period: $period) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n  }\n": types.MostExpensiveDocument,
    "\n  query Accounts($first: Int, $after: String, $role: Role) {\n    accounts(first: $first, after: $after, role: $role) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n": types.AccountsDocument,
    "\n  query SearchAccounts($search: String!, $first: Int, $after: String) {\n    searchAccounts(search: $search, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n": types.SearchAccountsDocument,
    "\n  mutation CreateAccount($input: CreateAccountInput!) {\n    createAccount(input: $input) {\n      ...AccountFields\n    }\n  }\n": types.CreateAccountDocument,
    "\n  mutation ChangeRole($accountId: ID!, $role: Role!) {\n    changeRole(accountId: $accountId, role: $role) {\n      ...AccountFields\n    }\n  }\n": types.ChangeRoleDocument,
    "\n  mutation DeactivateAccount($accountId: ID!) {\n    deactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n": types.DeactivateAccountDocument,
    "\n  mutation ReactivateAccount($accountId: ID!) {\n    reactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n": types.ReactivateAccountDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment AccountFields on Account {\n    id\n    username\n    fullName\n    email\n    role\n    active\n    createdAt\n  }\n"): (typeof documents)["\n  fragment AccountFields on Account {\n    id\n    username\n    fullName\n    email\n    role\n    active\n    createdAt\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment TaskFields on Task {\n    id\n    title\n    jiraId\n    description\n    status\n    createdAt\n    completedAt\n    assignee {\n      id\n      username\n      fullName\n    }\n    price {\n      fee\n      reward\n    }\n  }\n"): (typeof documents)["\n  fragment TaskFields on Task {\n    id\n    title\n    jiraId\n    description\n    status\n    createdAt\n    completedAt\n    assignee {\n      id\n      username\n      fullName\n    }\n    price {\n      fee\n      reward\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment EntryFields on LedgerEntry {\n    id\n    type\n    amount\n    balanceAfter\n    description\n    occurredAt\n    day\n    task {\n      id\n      title\n      jiraId\n      description\n    }\n  }\n"): (typeof documents)["\n  fragment EntryFields on LedgerEntry {\n    id\n    type\n    amount\n    balanceAfter\n    description\n    occurredAt\n    day\n    task {\n      id\n      title\n      jiraId\n      description\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment AuthFields on AuthPayload {\n    token\n    expiresAt\n    account {\n      ...AccountFields\n    }\n  }\n"): (typeof documents)["\n  fragment AuthFields on AuthPayload {\n    token\n    expiresAt\n    account {\n      ...AccountFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Login($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      ...AuthFields\n    }\n  }\n"): (typeof documents)["\n  mutation Login($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      ...AuthFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) {\n      ...AuthFields\n    }\n  }\n"): (typeof documents)["\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) {\n      ...AuthFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RefreshSession {\n    refreshSession {\n      ...AuthFields\n    }\n  }\n"): (typeof documents)["\n  mutation RefreshSession {\n    refreshSession {\n      ...AuthFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Logout {\n    logout\n  }\n"): (typeof documents)["\n  mutation Logout {\n    logout\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Me {\n    me {\n      ...AccountFields\n    }\n  }\n"): (typeof documents)["\n  query Me {\n    me {\n      ...AccountFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {\n    changePassword(currentPassword: $currentPassword, newPassword: $newPassword)\n  }\n"): (typeof documents)["\n  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {\n    changePassword(currentPassword: $currentPassword, newPassword: $newPassword)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpdateProfile($fullName: String, $email: String) {\n    updateProfile(fullName: $fullName, email: $email) {\n      ...AccountFields\n    }\n  }\n"): (typeof documents)["\n  mutation UpdateProfile($fullName: String, $email: String) {\n    updateProfile(fullName: $fullName, email: $email) {\n      ...AccountFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Tasks($first: Int, $after: String, $status: TaskStatus, $assigneeId: ID) {\n    tasks(first: $first, after: $after, status: $status, assigneeId: $assigneeId) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Tasks($first: Int, $after: String, $status: TaskStatus, $assigneeId: ID) {\n    tasks(first: $first, after: $after, status: $status, assigneeId: $assigneeId) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query MyTasks($first: Int, $after: String, $status: TaskStatus) {\n    myTasks(first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query MyTasks($first: Int, $after: String, $status: TaskStatus) {\n    myTasks(first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query SearchTasks($search: String!, $first: Int, $after: String, $status: TaskStatus) {\n    searchTasks(search: $search, first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query SearchTasks($search: String!, $first: Int, $after: String, $status: TaskStatus) {\n    searchTasks(search: $search, first: $first, after: $after, status: $status) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...TaskFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Assignees {\n    accounts(first: 100) {\n      edges {\n        node {\n          id\n          username\n          fullName\n          role\n          active\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Assignees {\n    accounts(first: 100) {\n      edges {\n        node {\n          id\n          username\n          fullName\n          role\n          active\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateTask($input: CreateTaskInput!) {\n    createTask(input: $input) {\n      ...TaskFields\n    }\n  }\n"): (typeof documents)["\n  mutation CreateTask($input: CreateTaskInput!) {\n    createTask(input: $input) {\n      ...TaskFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CompleteTask($id: ID!) {\n    completeTask(id: $id) {\n      ...TaskFields\n    }\n  }\n"): (typeof documents)["\n  mutation CompleteTask($id: ID!) {\n    completeTask(id: $id) {\n      ...TaskFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ShuffleTasks {\n    shuffleTasks {\n      reassigned\n    }\n  }\n"): (typeof documents)["\n  mutation ShuffleTasks {\n    shuffleTasks {\n      reassigned\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription TaskChanged($assigneeId: ID) {\n    taskChanged(assigneeId: $assigneeId) {\n      kind\n      occurredAt\n      previousAssignee {\n        id\n      }\n      task {\n        ...TaskFields\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription TaskChanged($assigneeId: ID) {\n    taskChanged(assigneeId: $assigneeId) {\n      kind\n      occurredAt\n      previousAssignee {\n        id\n      }\n      task {\n        ...TaskFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query BillingAccount($accountId: ID!, $first: Int, $after: String, $day: Date, $from: Date!, $to: Date!) {\n    billingAccount(accountId: $accountId) {\n      account {\n        ...AccountFields\n      }\n      balance\n      earnedToday\n      entries(first: $first, after: $after, day: $day) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        edges {\n          node {\n            ...EntryFields\n          }\n        }\n      }\n      days(from: $from, to: $to) {\n        date\n        earned\n        paidOut\n      }\n      payments(first: 20) {\n        id\n        amount\n        day\n        createdAt\n        emailSent\n      }\n    }\n  }\n"): (typeof documents)["\n  query BillingAccount($accountId: ID!, $first: Int, $after: String, $day: Date, $from: Date!, $to: Date!) {\n    billingAccount(accountId: $accountId) {\n      account {\n        ...AccountFields\n      }\n      balance\n      earnedToday\n      entries(first: $first, after: $after, day: $day) {\n        totalCount\n        pageInfo {\n          hasNextPage\n          endCursor\n        }\n        edges {\n          node {\n            ...EntryFields\n          }\n        }\n      }\n      days(from: $from, to: $to) {\n        date\n        earned\n        paidOut\n      }\n      payments(first: 20) {\n        id\n        amount\n        day\n        createdAt\n        emailSent\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription BalanceChanged($accountId: ID) {\n    balanceChanged(accountId: $accountId) {\n      accountId\n      balance\n      entry {\n        ...EntryFields\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription BalanceChanged($accountId: ID) {\n    balanceChanged(accountId: $accountId) {\n      accountId\n      balance\n      entry {\n        ...EntryFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query BillingAccounts($first: Int, $after: String) {\n    billingAccounts(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          balance\n          earnedToday\n          account {\n            id\n            username\n            fullName\n            role\n            active\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query BillingAccounts($first: Int, $after: String) {\n    billingAccounts(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          balance\n          earnedToday\n          account {\n            id\n            username\n            fullName\n            role\n            active\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ManagementEarnings($from: Date!, $to: Date!) {\n    managementEarnings(from: $from, to: $to) {\n      date\n      managementEarnings\n    }\n  }\n"): (typeof documents)["\n  query ManagementEarnings($from: Date!, $to: Date!) {\n    managementEarnings(from: $from, to: $to) {\n      date\n      managementEarnings\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CloseBillingDay {\n    closeBillingDay {\n      day\n      paidAccounts\n      totalPaid\n    }\n  }\n"): (typeof documents)["\n  mutation CloseBillingDay {\n    closeBillingDay {\n      day\n      paidAccounts\n      totalPaid\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AnalyticsSummary($date: Date) {\n    analyticsSummary(date: $date) {\n      date\n      managementEarnings\n      negativeBalanceCount\n    }\n  }\n"): (typeof documents)["\n  query AnalyticsSummary($date: Date) {\n    analyticsSummary(date: $date) {\n      date\n      managementEarnings\n      negativeBalanceCount\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query MostExpensive($from: Date!, $to: Date!, $period: Period!) {\n    mostExpensiveTask(from: $from, to: $to) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n    mostExpensiveTasks(from: $from, to: $to, period: $period) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query MostExpensive($from: Date!, $to: Date!, $period: Period!) {\n    mostExpensiveTask(from: $from, to: $to) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n    mostExpensiveTasks(from: $from, to: $to, period: $period) {\n      from\n      to\n      top {\n        reward\n        completedAt\n        task {\n          id\n          title\n          jiraId\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Accounts($first: Int, $after: String, $role: Role) {\n    accounts(first: $first, after: $after, role: $role) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Accounts($first: Int, $after: String, $role: Role) {\n    accounts(first: $first, after: $after, role: $role) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query SearchAccounts($search: String!, $first: Int, $after: String) {\n    searchAccounts(search: $search, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query SearchAccounts($search: String!, $first: Int, $after: String) {\n    searchAccounts(search: $search, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...AccountFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateAccount($input: CreateAccountInput!) {\n    createAccount(input: $input) {\n      ...AccountFields\n    }\n  }\n"): (typeof documents)["\n  mutation CreateAccount($input: CreateAccountInput!) {\n    createAccount(input: $input) {\n      ...AccountFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ChangeRole($accountId: ID!, $role: Role!) {\n    changeRole(accountId: $accountId, role: $role) {\n      ...AccountFields\n    }\n  }\n"): (typeof documents)["\n  mutation ChangeRole($accountId: ID!, $role: Role!) {\n    changeRole(accountId: $accountId, role: $role) {\n      ...AccountFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeactivateAccount($accountId: ID!) {\n    deactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n"): (typeof documents)["\n  mutation DeactivateAccount($accountId: ID!) {\n    deactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ReactivateAccount($accountId: ID!) {\n    reactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n"): (typeof documents)["\n  mutation ReactivateAccount($accountId: ID!) {\n    reactivateAccount(accountId: $accountId) {\n      ...AccountFields\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;